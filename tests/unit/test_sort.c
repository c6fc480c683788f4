/*
 * Unit tests for common/sort: empty arrays (NULL, 0) are sorted and
 * searched without touching the C library's undefined case (the ASan/UBSan
 * run halts on it), and non-empty ones as qsort and bsearch would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/sort.h"

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static void test_empty(void **state)
{
	(void)state;
	int key = 1;
	sort_array(NULL, 0, sizeof(int), cmp_int);
	assert_null(search_array(&key, NULL, 0, sizeof(int), cmp_int));
}

static void test_sorted_and_found(void **state)
{
	(void)state;
	int v[] = { 5, -1, 3, 3, 0 }, key;
	sort_array(v, 5, sizeof(int), cmp_int);
	for (size_t i = 1; i < 5; i++)
		assert_true(v[i - 1] <= v[i]);
	key = 3;
	int *hit = search_array(&key, v, 5, sizeof(int), cmp_int);
	assert_non_null(hit);
	assert_int_equal(*hit, 3);
	key = 4;
	assert_null(search_array(&key, v, 5, sizeof(int), cmp_int));
	key = -1;
	assert_ptr_equal(search_array(&key, v, 1, sizeof(int), cmp_int), &v[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_sorted_and_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
