/* Tests for lib/backend/vulkan/device.c, pipeline.c and seq.c: listing,
 * selection, the validation counter, the pipeline cache on disk, replay
 * and timestamps. */
#include "vkt.h"

#include <sys/stat.h>

#include "backend/vulkan/vk_impl.h"

static void test_devices_lists_lavapipe_or_better(void **state)
{
	struct hf_err err = { 0 };
	struct hf_vk_devinfo *d = NULL;
	size_t n = 0, usable = 0;

	if (hf_vk_devices(&d, &n, &err))
		fail_msg("hf_vk_devices: %s", err.msg);
	assert_true(n >= 1);
	for (size_t i = 0; i < n; i++) {
		assert_true(d[i].name[0] != '\0');
		if (!d[i].usable)
			continue;
		usable++;
		/* a subgroup size is a power of two */
		assert_true(d[i].subgroup_size > 0);
		assert_int_equal(d[i].subgroup_size & (d[i].subgroup_size - 1),
				 0);
		assert_true(d[i].device_local_bytes > 0);
	}
	assert_true(usable >= 1);
	free(d);
}

static void test_open_picks_a_usable_device(void **state)
{
	struct hf_vk *vk = vkt_open();
	const struct hf_vk_devinfo *i = hf_vk_info(vk);

	assert_true(i->usable);
	assert_true(hf_vk_validating(vk));
	vkt_close(vk);
}

static void test_validation_errors_are_counted(void **state)
{
	struct hf_vk *vk = vkt_open();
	VkBufferCreateInfo bci = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = 0,	/* invalid: VUID-VkBufferCreateInfo-size-00912 */
		.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
	};
	VkBuffer b = VK_NULL_HANDLE;

	assert_int_equal(hf_vk_validation_errors(vk), 0);
	if (vkCreateBuffer(vk->dev, &bci, NULL, &b) == VK_SUCCESS && b)
		vkDestroyBuffer(vk->dev, b, NULL);
	assert_true(hf_vk_validation_errors(vk) >= 1);
	hf_vk_free(vk);
}

static void test_bad_device_index_names_the_variable(void **state)
{
	struct hf_err err = { 0 };
	struct hf_vk *vk = NULL;
	struct hf_vk_opts o = { .cache_dir = "" };

	setenv("HF_VK_DEVICE", "99", 1);
	assert_int_equal(hf_vk_open(&vk, &o, &err), HF_EINVAL);
	unsetenv("HF_VK_DEVICE");
	assert_null(vk);
	assert_non_null(strstr(err.msg, "HF_VK_DEVICE='99'"));
}

static void test_no_driver_says_what_is_missing(void **state)
{
	struct hf_err err = { 0 };
	struct hf_vk *vk = NULL;
	struct hf_vk_opts o = { .cache_dir = "" };
	int rc;

	/* the loader reads these when the instance is made; the values
	 * in force before (a GPU machine may need its own) come back */
	char *saved[2];
	const char *var[2] = { "VK_DRIVER_FILES", "VK_ICD_FILENAMES" };

	for (int i = 0; i < 2; i++) {
		saved[i] = getenv(var[i]) ? strdup(getenv(var[i])) : NULL;
		setenv(var[i], "/nonexistent/icd.json", 1);
	}
	rc = hf_vk_open(&vk, &o, &err);
	for (int i = 0; i < 2; i++) {
		if (saved[i])
			setenv(var[i], saved[i], 1);
		else
			unsetenv(var[i]);
		free(saved[i]);
	}
	assert_null(vk);
	assert_true(rc == HF_EUNSUPPORTED || rc == HF_ENOTFOUND);
	assert_non_null(strstr(err.msg, "mesa-vulkan-drivers"));
}

/* y = 2 x + 1 over n floats, recorded into a new sequence. */
static struct hf_vk_seq *record_scale(struct hf_vk *vk, struct hf_vk_buf *y,
				      struct hf_vk_buf *x, uint32_t n)
{
	struct hf_vk_seq *s;

	VKT_CHECK(hf_vk_seq_begin(vk, &s, &err));
	VKT_CHECK(hf_vk_op_scale(s, y, x, n, 2.0f, 1.0f, &err));
	VKT_CHECK(hf_vk_op_scale(s, y, y, n, 1.0f, 0.5f, &err));
	VKT_CHECK(hf_vk_seq_end(s, &err));
	return s;
}

static void test_sequence_replays_on_new_inputs(void **state)
{
	struct hf_vk *vk = vkt_open();
	float x[37], y[37];
	struct hf_vk_buf *bx = vkt_buf(vk, NULL, sizeof(x));
	struct hf_vk_buf *by = vkt_buf(vk, NULL, sizeof(y));
	struct hf_vk_seq *s = record_scale(vk, by, bx, 37);

	for (int run = 0; run < 3; run++) {
		for (int i = 0; i < 37; i++)
			x[i] = (float)(i * (run + 1));
		VKT_CHECK(hf_vk_upload(vk, bx, 0, x, sizeof(x), &err));
		VKT_CHECK(hf_vk_seq_run(s, &err));
		vkt_get(vk, y, by, sizeof(y));
		for (int i = 0; i < 37; i++)
			if (y[i] != 2.0f * x[i] + 1.5f)
				fail_msg("run %d index %d: got %g, want %g", run,
					 i, y[i], 2.0f * x[i] + 1.5f);
	}
	assert_int_equal(hf_vk_seq_dispatches(s), 2);
	hf_vk_seq_free(s);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(by);
	vkt_close(vk);
}

static void test_reset_sequence_records_anew(void **state)
{
	struct hf_vk *vk = vkt_open();
	float x[300], y[300];
	struct hf_vk_buf *bx = vkt_buf(vk, NULL, sizeof(x));
	struct hf_vk_buf *by = vkt_buf(vk, NULL, sizeof(y));
	struct hf_vk_seq *s = record_scale(vk, by, bx, 300);
	const struct hf_vk_timing *t;
	size_t n;

	for (int i = 0; i < 300; i++)
		x[i] = (float)i;
	VKT_CHECK(hf_vk_upload(vk, bx, 0, x, sizeof(x), &err));
	VKT_CHECK(hf_vk_seq_run(s, &err));
	/* more dispatches than before: y = ((x * 3) * 3) * 3 * 3 */
	VKT_CHECK(hf_vk_seq_reset(s, &err));
	VKT_CHECK(hf_vk_op_scale(s, by, bx, 300, 3.0f, 0.0f, &err));
	for (int k = 0; k < 3; k++)
		VKT_CHECK(hf_vk_op_scale(s, by, by, 300, 3.0f, 0.0f, &err));
	VKT_CHECK(hf_vk_seq_end(s, &err));
	VKT_CHECK(hf_vk_seq_run(s, &err));
	vkt_get(vk, y, by, sizeof(y));
	for (int i = 0; i < 300; i++)
		if (y[i] != 81.0f * x[i])
			fail_msg("index %d: got %g, want %g", i, y[i], 81.0f * x[i]);
	assert_int_equal(hf_vk_seq_dispatches(s), 4);
	t = hf_vk_seq_timings(s, &n);
	if (hf_vk_info(vk)->timestamps)
		assert_int_equal(n, 4);
	(void)t;
	hf_vk_seq_free(s);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(by);
	vkt_close(vk);
}

static void test_timestamps_name_each_dispatch(void **state)
{
	struct hf_vk *vk = vkt_open();
	struct hf_vk_buf *bx = vkt_buf(vk, NULL, 4096);
	struct hf_vk_buf *by = vkt_buf(vk, NULL, 4096);
	struct hf_vk_seq *s = record_scale(vk, by, bx, 1024);
	const struct hf_vk_timing *t;
	size_t n;

	VKT_CHECK(hf_vk_seq_run(s, &err));
	t = hf_vk_seq_timings(s, &n);
	if (hf_vk_info(vk)->timestamps) {
		assert_int_equal(n, 2);
		assert_string_equal(t[0].op, "scale_f32");
		assert_string_equal(t[1].op, "scale_f32");
		assert_true(t[0].ms >= 0.0 && t[0].ms < 10000.0);
	} else {
		assert_int_equal(n, 0);
		assert_null(t);
	}
	hf_vk_seq_free(s);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(by);
	vkt_close(vk);
}

static void test_op_on_too_small_buffer_names_it(void **state)
{
	struct hf_vk *vk = vkt_open();
	struct hf_vk_buf *bx = vkt_buf(vk, NULL, 64);
	struct hf_vk_buf *by = vkt_buf(vk, NULL, 32);
	struct hf_err err = { 0 };
	struct hf_vk_seq *s;

	if (hf_vk_seq_begin(vk, &s, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(hf_vk_op_scale(s, by, bx, 16, 1.0f, 0.0f, &err),
			 HF_EINVAL);
	assert_non_null(strstr(err.msg, "scale: y needs 64 bytes"));
	hf_vk_seq_free(s);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(by);
	vkt_close(vk);
}

static size_t cache_bytes(struct hf_vk *vk)
{
	size_t n = 0;

	assert_int_equal(vkGetPipelineCacheData(vk->dev, vk->cache, &n, NULL),
			 VK_SUCCESS);
	return n;
}

static void test_pipeline_cache_is_saved_and_loaded(void **state)
{
	char dir[128], path[256];
	struct hf_vk_opts o = { 0 };
	struct hf_vk *vk;
	struct hf_vk_buf *bx, *by;
	struct hf_vk_seq *s;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/cache-test/sub", vkt_cache_dir());
	o.cache_dir = dir;
	vk = vkt_open_with(o);
	assert_int_equal(vk->cache_loaded, 0);
	bx = vkt_buf(vk, NULL, 256);
	by = vkt_buf(vk, NULL, 256);
	s = record_scale(vk, by, bx, 64);
	snprintf(path, sizeof(path), "%s", vk->cache_path);
	hf_vk_seq_free(s);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(by);
	vkt_close(vk);

	/* at least the header (lavapipe keeps no pipelines in it; GPU
	 * drivers do) */
	assert_int_equal(stat(path, &st), 0);
	assert_true((size_t)st.st_size >= 16 + VK_UUID_SIZE);
	/* a new device accepts the file as made by this driver */
	vk = vkt_open_with(o);
	assert_int_equal(vk->cache_loaded, (size_t)st.st_size);
	assert_true(cache_bytes(vk) >= 16 + VK_UUID_SIZE);
	vkt_close(vk);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_devices_lists_lavapipe_or_better),
		cmocka_unit_test(test_open_picks_a_usable_device),
		cmocka_unit_test(test_validation_errors_are_counted),
		cmocka_unit_test(test_bad_device_index_names_the_variable),
		cmocka_unit_test(test_no_driver_says_what_is_missing),
		cmocka_unit_test(test_sequence_replays_on_new_inputs),
		cmocka_unit_test(test_reset_sequence_records_anew),
		cmocka_unit_test(test_timestamps_name_each_dispatch),
		cmocka_unit_test(test_op_on_too_small_buffer_names_it),
		cmocka_unit_test(test_pipeline_cache_is_saved_and_loaded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
