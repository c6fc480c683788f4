/*
 * sort — qsort and bsearch for arrays that may be empty.
 *
 * The C library's pair is undefined for a NULL base even with no
 * elements (UBSan reports it, and the tests halt on it), and the arrays
 * hcd sorts are often empty and unallocated: a host with no VMs, a VM
 * with no rules.  Use these instead of calling qsort/bsearch directly.
 */
#ifndef HC_SORT_H
#define HC_SORT_H

#include <stddef.h>

typedef int (*sort_cmp)(const void *, const void *);

/* Sorts the n elements of base (NULL when n is 0). */
void sort_array(void *base, size_t n, size_t size, sort_cmp cmp);

/* The element equal to key in the sorted array, or NULL (also when n is 0). */
void *search_array(const void *key, const void *base, size_t n, size_t size, sort_cmp cmp);

#endif
