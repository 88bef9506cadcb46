#!/usr/bin/env bash
# Regenerates src/server/webui.c from web/index.html (the chat page served
# at /). Run after editing the page; tests/test_server.sh checks that the
# served page equals web/index.html byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
{
    echo '/*'
    echo ' * webui.c: the chat page served at / (GENERATED from web/index.html by'
    echo ' * scripts/embed_webui.sh; edit the HTML, then rerun the script).'
    echo ' * It uses no external assets: styles and script are inline.'
    echo ' */'
    echo '#include "server_internal.h"'
    echo ''
    echo 'const char srv_webui_html[] ='
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' web/index.html
    echo '    ;'
} > src/server/webui.c.tmp
mv src/server/webui.c.tmp src/server/webui.c
