/*
 * sshkey — parse and validate one OpenSSH public key line
 * "TYPE BASE64 [COMMENT]" (the format of id_*.pub and authorized_keys
 * without options).  Pure and unit tested.
 *
 * Invariants of an accepted key:
 *   - TYPE is one we know: ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521
 *     and the FIDO variants sk-ssh-ed25519@openssh.com and
 *     sk-ecdsa-sha2-nistp256@openssh.com;
 *   - the blob decodes, names TYPE as its first SSH string and has exactly
 *     the structure of that type (RSA modulus 2048..16384 bits, ECDSA curve
 *     and point length matching, ed25519 32 bytes), nothing trailing;
 *   - the comment is printable ASCII and bounded;
 *   - `line` is canonical: "TYPE BASE64" or "TYPE BASE64 COMMENT", the
 *     base64 re-encoded from the blob, so equal keys compare equal;
 *   - `fingerprint` is what `ssh-keygen -lf` prints: "SHA256:" + unpadded
 *     base64 of SHA-256 over the blob.
 */
#ifndef HC_SSHKEY_H
#define HC_SSHKEY_H

#include <stddef.h>

#define SSHKEY_LINE_MAX    (16 * 1024)   /* bytes of the whole input */
#define SSHKEY_COMMENT_MAX 256
#define SSHKEY_FP_LEN      50            /* "SHA256:" + 43 */
#define SSHKEY_ERR_LEN     160

struct sshkey {
	char type[48];
	unsigned bits;                      /* 256 (ed25519), modulus or curve size */
	char fingerprint[SSHKEY_FP_LEN + 1];
	char *comment;                      /* "" when none */
	char *line;                         /* canonical line, malloc'd */
};

/*
 * Parse text (one line; surrounding white space and a final newline are
 * fine).  0 on success; -1 with a one-line reason in err (never quoting key
 * material) otherwise.  On success free with sshkey_free.
 */
int sshkey_parse(const char *text, struct sshkey *out, char err[SSHKEY_ERR_LEN]);
void sshkey_free(struct sshkey *k);

#endif
