/* sort — see sort.h. */
#include "common/sort.h"

#include <stdlib.h>

void sort_array(void *base, size_t n, size_t size, sort_cmp cmp)
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

void *search_array(const void *key, const void *base, size_t n, size_t size, sort_cmp cmp)
{
	return n > 0 ? bsearch(key, base, n, size, cmp) : NULL;
}
