/*
 * datadir — where hackcloud's shared files are (builder/, web/): the
 * source tree a binary was built from while it runs from that build
 * directory, so a build in progress uses its own files and not an older
 * installed copy; else the installed share/hackcloud.
 */
#ifndef HC_DATADIR_H
#define HC_DATADIR_H

/* DIR/rel for the directory above; malloc'd (NULL: out of memory). */
char *datadir_path(const char *rel);

#endif
