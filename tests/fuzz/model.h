/*
 * model — store rows (store/store.h) made from fuzz input, line by line,
 * for the harnesses of code that renders them (codec, metadata).  Every
 * field the store may hand over is set, with whatever bytes the input has:
 * rows can come from another host's hcd through a shared PostgreSQL, and
 * some text (an import's error) from a remote server.
 *
 * A NOT NULL column gets "" when its line is missing; a nullable one is
 * NULL when its line is empty.  Free with the store's own *_free.
 */
#ifndef HC_FUZZ_MODEL_H
#define HC_FUZZ_MODEL_H

#include "fuzz.h"
#include "store/store.h"

void model_vm(struct fuzz_in *in, struct vm *vm);
void model_image(struct fuzz_in *in, struct image *im);
void model_network(struct fuzz_in *in, struct network *n);

#endif
