/*
 * fuzz_sshkey — OpenSSH public key lines (common/sshkey.h), as members
 * send them in POST /v1/keys and as guests later receive them.
 *
 * An accepted key must be a fixed point: its canonical line parses again
 * to the same type, size, fingerprint, comment and line, and that line
 * holds nothing but printable ASCII (it goes verbatim into metadata,
 * authorized_keys and the NoCloud seed).
 */
#include "fuzz.h"

#include "common/sshkey.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[SSHKEY_ERR_LEN], err2[SSHKEY_ERR_LEN];
	struct sshkey k, again;
	char *text;

	if (size > SSHKEY_LINE_MAX + 64)
		return 0;
	text = fuzz_cstr(data, size);
	if (sshkey_parse(text, &k, err) != 0) {
		FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL && err[0], "no reason given");
		free(text);
		return 0;
	}
	for (const char *p = k.line; *p; p++)
		FUZZ_ASSERT(*p >= 0x20 && *p < 0x7f, "byte 0x%02x in the canonical line",
			    (unsigned char)*p);
	FUZZ_ASSERT(strncmp(k.fingerprint, "SHA256:", 7) == 0 && strlen(k.fingerprint) == 50,
		    "fingerprint '%s'", k.fingerprint);
	FUZZ_ASSERT(strlen(k.comment) <= SSHKEY_COMMENT_MAX, "comment of %zu bytes",
		    strlen(k.comment));
	FUZZ_ASSERT(sshkey_parse(k.line, &again, err2) == 0, "canonical line refused: %s", err2);
	FUZZ_ASSERT(strcmp(k.line, again.line) == 0, "canonical line not stable");
	FUZZ_ASSERT(strcmp(k.type, again.type) == 0 && k.bits == again.bits &&
		    strcmp(k.fingerprint, again.fingerprint) == 0 &&
		    strcmp(k.comment, again.comment) == 0, "key changed through its canonical line");
	sshkey_free(&again);
	sshkey_free(&k);
	free(text);
	return 0;
}
