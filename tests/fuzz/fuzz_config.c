/*
 * Fuzz target for trustd's configuration file: arbitrary bytes are
 * written to an anonymous memory file and read with config_load() through
 * /proc/self/fd, the same path a real file takes (config.c has no string
 * entry point).  Nothing touches the file system.  A refused file must
 * come with a NUL-terminated message; a loaded one must hold
 * NUL-terminated strings and values inside their documented limits.  Any
 * broken invariant aborts.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static void fuzz_check_str(const char *s, size_t size);
static int fuzz_write_all(int fd, const uint8_t *data, size_t size);


static void
fuzz_check_str(const char *s, size_t size)
{
    if (strnlen(s, size) == size) {
        abort();
    }
}


static int
fuzz_write_all(int fd, const uint8_t *data, size_t size)
{
    ssize_t  n;

    while (size > 0) {
        n = write(fd, data, size);
        if (n <= 0) {
            return -1;
        }
        data += n;
        size -= (size_t) n;
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static config_t   cfg;
    config_err_t      err;
    char              path[64];
    size_t            i;
    int               fd;

    fd = memfd_create("fuzz-trustd.conf", MFD_CLOEXEC);
    if (fd == -1) {
        return 0;
    }

    if (fuzz_write_all(fd, data, size) != 0) {
        close(fd);
        return 0;
    }

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    memset(&err, 0, sizeof(err));

    if (config_load(path, &cfg, &err) == 0) {
        fuzz_check_str(cfg.listen, sizeof(cfg.listen));
        fuzz_check_str(cfg.store, sizeof(cfg.store));
        fuzz_check_str(cfg.pid_file, sizeof(cfg.pid_file));
        fuzz_check_str(cfg.policy, sizeof(cfg.policy));
        fuzz_check_str(cfg.portal_url, sizeof(cfg.portal_url));
        fuzz_check_str(cfg.admin_listen, sizeof(cfg.admin_listen));
        fuzz_check_str(cfg.identity_keys, sizeof(cfg.identity_keys));
        fuzz_check_str(cfg.portal_listen, sizeof(cfg.portal_listen));
        if (cfg.npeers > CONFIG_MAX_PEERS || cfg.nadmins > CONFIG_MAX_PEERS
            || cfg.nportal_hosts > CONFIG_MAX_HOSTS
            || cfg.store_map_size < 1024 * 1024)
        {
            abort();
        }
        for (i = 0; i < cfg.nportal_hosts; i++) {
            fuzz_check_str(cfg.portal_hosts[i], sizeof(cfg.portal_hosts[i]));
        }

    } else if (err.msg[0] == '\0'
               || strnlen(err.msg, sizeof(err.msg)) == sizeof(err.msg))
    {
        abort();
    }

    close(fd);

    return 0;
}
