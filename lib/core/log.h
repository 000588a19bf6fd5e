/* lib/core/log.h: leveled logging to stderr, set by HF_LOG. */
#ifndef HF_CORE_LOG_H
#define HF_CORE_LOG_H

enum hf_log_level {
	HF_LOG_ERROR = 0,
	HF_LOG_WARN,
	HF_LOG_INFO,
	HF_LOG_DEBUG,
};

/* The current level: HF_LOG=error|warn|info|debug (default warn), read
 * once; hf_log_set_level() overrides it (e.g. for -v). */
enum hf_log_level hf_log_level(void);
void hf_log_set_level(enum hf_log_level level);

/* Writes "hf: <level>: <message>\n" to stderr when level <= hf_log_level(). */
void hf_log(enum hf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define hf_log_error(...) hf_log(HF_LOG_ERROR, __VA_ARGS__)
#define hf_log_warn(...) hf_log(HF_LOG_WARN, __VA_ARGS__)
#define hf_log_info(...) hf_log(HF_LOG_INFO, __VA_ARGS__)
#define hf_log_debug(...) hf_log(HF_LOG_DEBUG, __VA_ARGS__)

#endif
