/* Tests for lib/backend/vulkan/mem.c: suballocation, merging of freed
 * ranges, dedicated blocks for big buffers, views, and uploads/downloads
 * both through the staging ring (forced, with a ring smaller than the
 * data) and through mapped memory. */
#include "vkt.h"

#include "backend/vulkan/vk_impl.h"

#define CHUNK (64 * 1024)

static struct hf_vk *open_small(bool staging)
{
	struct hf_vk_opts o = {
		.chunk_bytes = CHUNK,
		.staging_bytes = 4096,
		.force_staging = staging,
	};

	return vkt_open_with(o);
}

static void test_small_buffers_share_a_block(void **state)
{
	struct hf_vk *vk = open_small(false);
	struct hf_vk_buf *a = vkt_buf(vk, NULL, 100), *b = vkt_buf(vk, NULL, 3);
	size_t held, used;

	assert_ptr_equal(a->chunk, b->chunk);
	assert_true(a->off + a->span <= b->off || b->off + b->span <= a->off);
	assert_int_equal(a->off % vk->align, 0);
	assert_int_equal(b->off % vk->align, 0);
	hf_vk_mem_usage(vk, &held, &used);
	assert_int_equal(held, CHUNK);
	hf_vk_buf_free(a);
	hf_vk_buf_free(b);
	vkt_close(vk);
}

static void test_freed_neighbours_merge(void **state)
{
	struct hf_vk *vk = open_small(false);
	const size_t third = CHUNK / 4;
	struct hf_vk_buf *a = vkt_buf(vk, NULL, third);
	struct hf_vk_buf *b = vkt_buf(vk, NULL, third);
	struct hf_vk_buf *c = vkt_buf(vk, NULL, third);
	struct hf_vk_buf *d;
	size_t held0, held1, used;

	hf_vk_mem_usage(vk, &held0, &used);
	hf_vk_buf_free(a);
	hf_vk_buf_free(b);
	/* only the merged range of a and b holds this */
	d = vkt_buf(vk, NULL, 2 * third);
	hf_vk_mem_usage(vk, &held1, &used);
	assert_int_equal(held1, held0);
	assert_ptr_equal(d->chunk, c->chunk);
	hf_vk_buf_free(c);
	hf_vk_buf_free(d);
	vkt_close(vk);
}

static void test_big_buffer_gets_its_own_block(void **state)
{
	struct hf_vk *vk = open_small(false);
	struct hf_vk_buf *s = vkt_buf(vk, NULL, 64);
	struct hf_vk_buf *big = vkt_buf(vk, NULL, 3 * CHUNK + 5);
	size_t held, used;

	assert_ptr_not_equal(s->chunk, big->chunk);
	assert_true(big->chunk->size >= 3 * CHUNK + 5);
	hf_vk_buf_free(big);
	/* the empty dedicated block went back to the driver */
	hf_vk_mem_usage(vk, &held, &used);
	assert_int_equal(held, CHUNK);
	hf_vk_buf_free(s);
	vkt_close(vk);
}

static void round_trip(bool staging)
{
	struct hf_vk *vk = open_small(staging);
	const size_t n = 10 * 1024 + 7;	/* over two rings' worth */
	unsigned char *src = malloc(n), *dst = malloc(n);
	struct hf_vk_buf *b = vkt_buf(vk, NULL, n + 16), *v;

	if (staging)
		assert_null(b->chunk->map);
	else
		assert_int_equal(b->chunk->map != NULL, vk->mapped);
	for (size_t i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 31 + 7);
	/* at an odd offset, in two uploads that both stay queued */
	VKT_CHECK(hf_vk_upload(vk, b, 3, src, 5000, &err));
	VKT_CHECK(hf_vk_upload(vk, b, 5003, src + 5000, n - 5000, &err));
	memset(dst, 0, n);
	VKT_CHECK(hf_vk_download(vk, dst, b, 3, n, &err));
	assert_memory_equal(dst, src, n);
	/* a view reads and writes at its offset */
	VKT_CHECK(hf_vk_buf_view(&v, b, 1003, 100, &err));
	memset(dst, 0, 100);
	VKT_CHECK(hf_vk_download(vk, dst, v, 0, 100, &err));
	assert_memory_equal(dst, src + 1000, 100);
	VKT_CHECK(hf_vk_zero(vk, v, &err));
	VKT_CHECK(hf_vk_download(vk, dst, b, 3, n, &err));
	for (size_t i = 0; i < n; i++)
		if (dst[i] != (i >= 1000 && i < 1100 ? 0 : src[i]))
			fail_msg("byte %zu: got %u", i, dst[i]);
	hf_vk_buf_free(v);
	hf_vk_buf_free(b);
	free(src);
	free(dst);
	vkt_close(vk);
}

static void test_round_trip_through_the_staging_ring(void **state)
{
	round_trip(true);
}

static void test_round_trip_through_mapped_memory(void **state)
{
	round_trip(false);
}

/* A clear then an upload to the same bytes, and two uploads to one place,
 * queued in one batch: the later write must win, with no write-after-write
 * hazard for the synchronization validation to report. */
static void test_queued_writes_to_one_place_land_in_order(void **state)
{
	struct hf_vk *vk = open_small(true);
	struct hf_vk_buf *b = vkt_buf(vk, NULL, 256);
	unsigned char one[256], two[256], got[256];

	memset(one, 0x11, sizeof(one));
	memset(two, 0x22, sizeof(two));
	VKT_CHECK(hf_vk_zero(vk, b, &err));
	VKT_CHECK(hf_vk_upload(vk, b, 0, one, sizeof(one), &err));
	VKT_CHECK(hf_vk_upload(vk, b, 0, two, 100, &err));
	VKT_CHECK(hf_vk_download(vk, got, b, 0, sizeof(got), &err));
	assert_memory_equal(got, two, 100);
	assert_memory_equal(got + 100, one + 100, sizeof(got) - 100);
	hf_vk_buf_free(b);
	vkt_close(vk);
}

static void test_out_of_range_upload_names_sizes(void **state)
{
	struct hf_vk *vk = open_small(true);
	struct hf_vk_buf *b = vkt_buf(vk, NULL, 64);
	struct hf_err err = { 0 };
	char x[16] = { 0 };

	assert_int_equal(hf_vk_upload(vk, b, 60, x, 8, &err), HF_ERANGE);
	assert_non_null(strstr(err.msg, "8 bytes at offset 60"));
	assert_non_null(strstr(err.msg, "64-byte buffer"));
	hf_vk_buf_free(b);
	vkt_close(vk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_buffers_share_a_block),
		cmocka_unit_test(test_freed_neighbours_merge),
		cmocka_unit_test(test_big_buffer_gets_its_own_block),
		cmocka_unit_test(test_round_trip_through_the_staging_ring),
		cmocka_unit_test(test_round_trip_through_mapped_memory),
		cmocka_unit_test(test_queued_writes_to_one_place_land_in_order),
		cmocka_unit_test(test_out_of_range_upload_names_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
