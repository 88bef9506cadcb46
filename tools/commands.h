/*
 * commands.h: the table of `cllm` subcommands, as an X-macro.
 *
 * Each entry is CLLM_COMMAND(name, function, summary). The function lives in
 * tools/cmd_<name>.c with the signature `int fn(int argc, char **argv)`, where
 * argv[0] is the subcommand name; it returns the process exit code
 * (tools/cli.h). Add a command by adding one line here. The order is the
 * pipeline's (data, tokenizer, training, post-training, inference, evaluation),
 * which is how `cllm --help` lists them.
 */
CLLM_COMMAND("version", cllm_cmd_version, "print the version and the CPU features in use")
CLLM_COMMAND("info", cllm_cmd_info, "parameter count, memory and FLOPs of a preset or model file")
CLLM_COMMAND("data", cllm_cmd_data, "generate the built-in practice world: stories, Korean, task sets, preference pairs")
CLLM_COMMAND("tokenizer", cllm_cmd_tokenizer, "train a BPE vocabulary; encode, decode and inspect text")
CLLM_COMMAND("tokenize", cllm_cmd_tokenize, "encode text or JSONL files into a token shard")
CLLM_COMMAND("pretrain", cllm_cmd_pretrain, "pre-train a transformer on text or token shards (checkpoints, resume)")
CLLM_COMMAND("scale", cllm_cmd_scale, "scaling laws: train a ladder of sizes, fit L(N) and L(N, D), isoFLOP optimum, predict the next size")
CLLM_COMMAND("sft", cllm_cmd_sft, "supervised fine-tuning on chat JSONL (TRL formats), full or LoRA, packing")
CLLM_COMMAND("lora", cllm_cmd_lora, "merge a LoRA adapter into its base model (cllm lora merge)")
CLLM_COMMAND("reward", cllm_cmd_reward, "train a Bradley-Terry reward model on prompt/chosen/rejected pairs")
CLLM_COMMAND("dpo", cllm_cmd_dpo, "Direct Preference Optimization on prompt/chosen/rejected pairs")
CLLM_COMMAND("ppo", cllm_cmd_ppo, "RLHF with PPO: rollouts, reward model, KL to a reference, GAE, clipped losses")
CLLM_COMMAND("grpo", cllm_cmd_grpo, "GRPO: group-sampled completions, verifiable or reward-model rewards, KL to a reference")
CLLM_COMMAND("quantize", cllm_cmd_quantize, "rewrite a GGUF model in f16, bf16, q8_0, q4_0, q4_1, q5_x, k-quants or q4_k_m-style mixes")
CLLM_COMMAND("convert", cllm_cmd_convert, "import a Hugging Face folder (safetensors, config.json, tokenizer) as GGUF, as llama.cpp converts it")
CLLM_COMMAND("generate", cllm_cmd_generate, "continue a prompt with a model, streaming tokens (KV cache, sampler chain)")
CLLM_COMMAND("chat", cllm_cmd_chat, "talk with a model in the terminal through its chat template")
CLLM_COMMAND("serve", cllm_cmd_serve, "serve a model over HTTP with OpenAI's API (streaming, parallel slots, chat page)")
CLLM_COMMAND("eval", cllm_cmd_eval, "score a model on task files (exact match, accuracy, ROUGE-L, chrF) and text (perplexity, bits per byte)")
CLLM_COMMAND("perplexity", cllm_cmd_perplexity, "perplexity of a model on a text; KL / top-1 / PPL ratio against a base model")
CLLM_COMMAND("attention", cllm_cmd_attention, "draw each head's attention weights over a text as an SVG grid")
CLLM_COMMAND("report", cllm_cmd_report, "one stage x task table (with targets and drops), a bar chart and a JSON summary from cllm eval --json files")
