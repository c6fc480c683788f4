/*
 * credfile — the CLI's store of API tokens, one per API URL, so that
 * `hc login` once lets later commands authenticate.
 *
 * The file is a JSON object {"URL": "TOKEN", …} at
 * $XDG_CONFIG_HOME/hackcloud/credentials (or ~/.config/hackcloud/
 * credentials).  Invariants: its directory is created with mode 0700 and
 * the file is always replaced whole with mode 0600 (temporary file, fsync,
 * rename); a file that is not such an object is reported, never
 * overwritten, so a hand edit with a typo does not lose the other tokens.
 */
#ifndef HC_AUTH_CREDFILE_H
#define HC_AUTH_CREDFILE_H

/* The default path, malloc'd; NULL when neither XDG_CONFIG_HOME (absolute)
 * nor a home directory is known. */
char *credfile_path(void);

/* The token stored for url: 0 with *token malloc'd, 1 when there is none
 * (*token NULL), -1 with errno set when the file cannot be read or is not
 * a JSON object of strings (EINVAL). */
int credfile_load(const char *path, const char *url, char **token);

/* Store (or replace) the token for url.  0, or -1 with errno set. */
int credfile_store(const char *path, const char *url, const char *token);

/* Forget the token for url; none stored is success.  0, or -1 with errno. */
int credfile_remove(const char *path, const char *url);

#endif
