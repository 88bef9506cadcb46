"""bench_server.py: drives a running `cllm serve` with C concurrent
streaming clients on loopback (argv: port, server pid, concurrency list,
requests per client, max_tokens) and prints one JSON object: per level,
time to first token p50/p95/p99, per-client and aggregate tokens/s, failed
requests, server RSS before/after, and where the time went: the server
worker's wall time by phase (from /metrics), the server's CPU time per
thread kind, and this client's own CPU time (a client that saturates a core
would cap the measured rate). worker_ms_per_step divides each phase by the
level's decode steps; "idle" also holds the wait before the level's first
request. Standard library only."""
import http.client, json, os, resource, sys, threading, time

port, pid = int(sys.argv[1]), int(sys.argv[2])
levels = [int(x) for x in sys.argv[3].split(",")]
per_client, max_tokens = int(sys.argv[4]), int(sys.argv[5])


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def server_cpu():
    """CPU seconds of the server by thread name (worker, HTTP, OpenMP helpers = 'cllm')."""
    out, tick = {}, os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def scrape():
    """The worker's phase seconds and step counters from /metrics."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    m = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        k, v = line.rsplit(" ", 1)
        m[k] = float(v)
    return m


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def one_request(k, out):
    body = json.dumps({"prompt": "the cat sat on the mat. the dog", "max_tokens": max_tokens, "temperature": 0.8,
                       "seed": k, "stream": True, "stream_options": {"include_usage": True}})
    t0 = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            r.read()
            out.append({"ok": False, "status": r.status})
            return
        ttft, tokens, buf, done = None, 0, b"", False
        while True:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                data = ev[6:]
                if data == b"[DONE]":
                    done = True
                    continue
                # Parse only what is measured (the first text, the usage
                # event): a full JSON parse of every event under the GIL
                # would make this client, not the server, the limit.
                if ttft is not None and b'"usage"' not in data:
                    continue
                d = json.loads(data)
                if d.get("usage"):
                    tokens = d["usage"]["completion_tokens"]
                elif ttft is None and d["choices"] and d["choices"][0]["text"]:
                    ttft = time.perf_counter() - t0
        c.close()
        out.append({"ok": done and tokens > 0, "ttft": ttft, "tokens": tokens, "seconds": time.perf_counter() - t0})
    except Exception as e:  # noqa: BLE001
        out.append({"ok": False, "error": str(e)})


def client(cid, out):
    for j in range(per_client):
        one_request(cid * 1000 + j, out)


results = {"max_tokens": max_tokens, "requests_per_client": per_client, "levels": []}
for c in levels:
    rss0 = rss_kib()
    outs = [[] for _ in range(c)]
    m0, cpu0, self0 = scrape(), server_cpu(), resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    ths = [threading.Thread(target=client, args=(i, outs[i])) for i in range(c)]
    for t in ths: t.start()
    for t in ths: t.join()
    wall = time.perf_counter() - t0
    m1, cpu1, self1 = scrape(), server_cpu(), resource.getrusage(resource.RUSAGE_SELF)
    d = {k: m1[k] - m0.get(k, 0.0) for k in m1}
    steps = d.get("cllm_decode_steps_total", 0)
    phases = {k.split('"')[1]: v for k, v in d.items() if k.startswith("cllm_worker_seconds_total")}
    gen = d.get("cllm_generated_tokens_total", 0)
    flat = [x for o in outs for x in o]
    good = [x for x in flat if x["ok"]]
    ttfts = [x["ttft"] for x in good if x["ttft"] is not None]
    per_client_tps = [sum(x["tokens"] for x in o if x["ok"]) / max(1e-9, sum(x["seconds"] for x in o if x["ok"])) for o in outs]
    results["levels"].append({
        "clients": c, "requests": len(flat), "failed": len(flat) - len(good),
        "ttft_ms": {"p50": 1e3 * pct(ttfts, 50), "p95": 1e3 * pct(ttfts, 95), "p99": 1e3 * pct(ttfts, 99)} if ttfts else None,
        "per_client_tokens_per_s": sum(per_client_tps) / len(per_client_tps),
        "aggregate_tokens_per_s": sum(x["tokens"] for x in good) / wall,
        "wall_s": wall, "rss_kib_before": rss0, "rss_kib_after": rss_kib(),
        "decode_steps": steps, "rows_per_step": d.get("cllm_decode_rows_total", 0) / steps if steps else None,
        "worker_ms_per_step": {k: 1e3 * v / steps for k, v in phases.items()} if steps else None,
        "worker_phase_share": {k: v / wall for k, v in phases.items()},
        "server_cpu_s": {k: round(cpu1.get(k, 0.0) - cpu0.get(k, 0.0), 3) for k in cpu1},
        "server_cpu_ms_per_token": 1e3 * sum(cpu1.get(k, 0.0) - cpu0.get(k, 0.0) for k in cpu1) / gen if gen else None,
        "client_cpu_s": (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)})
single = results["levels"][0]["aggregate_tokens_per_s"] if results["levels"] else 0
for lv in results["levels"]:
    lv["aggregate_vs_single"] = lv["aggregate_tokens_per_s"] / single if single else None
print(json.dumps(results, indent=1))
