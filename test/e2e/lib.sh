# test/e2e/lib.sh: what the e2e scripts share; source it after `set -u`.

# quick_skip DIR: true when the fixture grid should skip model fixture
# DIR because HF_TEST_QUICK=1 (CI's sanitizer run, where a case costs ten
# times as much): it keeps one fixture of each layer kind and weight
# layout (llama-style with tied embeddings, fused qkv/gate_up, MoE, GPT-2
# Conv1D, a BERT encoder), so every code path still runs once. The
# plain run keeps every fixture.
quick_skip() {
	[ "${HF_TEST_QUICK:-0}" = 1 ] || return 1
	case $(basename "$1") in
	llama-tiny | phi3-tiny | mixtral-tiny | gpt2-tiny | bert-tiny | stories260k) return 1 ;;
	esac
	return 0
}
