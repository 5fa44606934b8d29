/*
 * Replays fuzz inputs without libFuzzer, as OpenSSL's fuzz/test-corpus.c
 * does, so that every build runs the saved corpus under the sanitizers.
 *
 *     fuzz_target FILE|DIR ...
 *
 * Each input runs in its own child process: one crashing input is named
 * and counted, and the others still run.  Exits 1 if any input failed.
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

static int replay_run(const char *path);
static void replay_one(const char *path);
static int replay_path(const char *path, unsigned *ninputs,
    unsigned *nfailures);


int
main(int argc, char **argv)
{
    const char  *name;
    unsigned     ninputs, nfailures;
    int          i;

    name = strrchr(argv[0], '/');
    name = (name != NULL) ? name + 1 : argv[0];

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR ...\n", name);
        return 2;
    }

    ninputs = 0;
    nfailures = 0;

    for (i = 1; i < argc; i++) {
        if (replay_path(argv[i], &ninputs, &nfailures) != 0) {
            nfailures++;
        }
    }

    printf("%s: replayed %u inputs, %u failures\n", name, ninputs, nfailures);

    /* an empty corpus is a packaging mistake, not a pass */
    return (nfailures == 0 && ninputs > 0) ? 0 : 1;
}


/* Returns -1 if path cannot be read at all; inputs are counted. */
static int
replay_path(const char *path, unsigned *ninputs, unsigned *nfailures)
{
    DIR            *dir;
    struct dirent  *de;
    struct stat     st;
    char            sub[4096];
    int             rc;

    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }

    if (!S_ISDIR(st.st_mode)) {
        (*ninputs)++;
        if (replay_run(path) != 0) {
            fprintf(stderr, "FAILED: %s\n", path);
            (*nfailures)++;
        }
        return 0;
    }

    dir = opendir(path);
    if (dir == NULL) {
        perror(path);
        return -1;
    }

    rc = 0;

    while ((de = readdir(dir)) != NULL) {
        /* skip ".", ".." and hidden files such as .gitkeep */
        if (de->d_name[0] == '.') {
            continue;
        }

        if ((size_t) snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name)
            >= sizeof(sub))
        {
            fprintf(stderr, "%s/%s: path too long\n", path, de->d_name);
            rc = -1;
            continue;
        }

        if (replay_path(sub, ninputs, nfailures) != 0) {
            rc = -1;
        }
    }

    closedir(dir);

    return rc;
}


/* Returns 0 if the input ran to completion in a child process. */
static int
replay_run(const char *path)
{
    pid_t  pid;
    int    status;

    fflush(NULL);

    pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }

    if (pid == 0) {
        replay_one(path);
        /* exit(), not _exit(): LeakSanitizer runs at exit */
        exit(0);
    }

    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        return -1;
    }

    return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : -1;
}


/*
 * Runs the target on the file's bytes, held in a buffer of exactly that
 * size so that AddressSanitizer catches a read one byte past the end.
 */
static void
replay_one(const char *path)
{
    FILE     *fp;
    uint8_t  *buf;
    long      size;

    fp = fopen(path, "rb");
    if (fp == NULL) {
        perror(path);
        exit(1);
    }

    if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0
        || fseek(fp, 0, SEEK_SET) != 0)
    {
        perror(path);
        exit(1);
    }

    buf = malloc(size > 0 ? (size_t) size : 1);
    if (buf == NULL) {
        perror("malloc");
        exit(1);
    }

    if (size > 0 && fread(buf, 1, (size_t) size, fp) != (size_t) size) {
        fprintf(stderr, "%s: short read\n", path);
        exit(1);
    }

    fclose(fp);

    LLVMFuzzerTestOneInput(buf, (size_t) size);

    free(buf);
}
