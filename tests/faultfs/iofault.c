/* iofault: an LD_PRELOAD shim that injects I/O faults below RocksDB (issue 19), for tests/faults.rs.
 *
 * It wraps the calls through which data reaches the disk: fsync, fdatasync, sync_file_range (syncing) and write,
 * pwrite, pwritev, writev (writing). Only files whose path (from /proc/self/fd) starts with $TLOG_IOFAULT_PREFIX are
 * affected; everything else, sockets and pipes included, goes straight through. What it does is read from the
 * file $TLOG_IOFAULT_CONTROL at every affected call, so a test changes the fault while the process runs:
 *
 *   (empty or missing)  pass everything through
 *   fsync=eio           every sync fails with EIO from now on, without syncing (the kernel may still write the
 *                       pages back later, or not: after a failed fsync nothing is known, which is the point)
 *   fsync=delay:MS      every sync sleeps MS milliseconds, then syncs (a slow disk)
 *   write=eio           every write fails with EIO, writing nothing
 *   write=enospc        every write fails with ENOSPC, writing nothing
 *
 *   track               journal what reached the disk, for a simulated power cut: after every successful
 *                       fsync or fdatasync "synced <path> <size>" (everything written before it is durable), and
 *                       after every rename "rename <old> <new>"
 *
 * Words combine on one line, separated by spaces ("fsync=delay:50 write=eio"). Each failed or delayed call is
 * counted in the journal $TLOG_IOFAULT_CONTROL.log (one line per call: "fsync eio <path>"), so a test can show
 * that the fault was hit.
 *
 * A power cut (tests/faults.rs `power_cut`) then keeps of each file only what its last sync covered: the files
 * RocksDB syncs (write-ahead log, tables, MANIFEST) are append-only, so "the size at the last sync" is exactly the
 * durable part. Overwrites in place are not modelled, and metadata (create, rename, unlink) counts as durable at
 * once, as if every directory were synced: a weaker simulation than a filesystem that loses those too. Built by the tests with the machine's C compiler: cc -shared -fPIC -O2 -o libiofault.so iofault.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);

static const char *prefix;
static size_t prefix_len;
static const char *control;

__attribute__((constructor)) static void iofault_init(void) {
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_sync_file_range = dlsym(RTLD_NEXT, "sync_file_range");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pwritev = dlsym(RTLD_NEXT, "pwritev");
    real_pwritev64 = dlsym(RTLD_NEXT, "pwritev64");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_renameat = dlsym(RTLD_NEXT, "renameat");
    prefix = getenv("TLOG_IOFAULT_PREFIX");
    control = getenv("TLOG_IOFAULT_CONTROL");
    prefix_len = prefix ? strlen(prefix) : 0;
}

enum op { SYNC, WRITE };

/* The control file's text into `text`; 0 if there is none. */
static int read_control(char *text, size_t size) {
    if (!control)
        return 0;
    int cfd = open(control, O_RDONLY | O_CLOEXEC);
    if (cfd < 0)
        return 0;
    ssize_t len = read(cfd, text, size - 1);
    close(cfd);
    if (len <= 0)
        return 0;
    text[len] = 0;
    return 1;
}

static int tracking(void) {
    char text[256];
    return prefix_len > 0 && read_control(text, sizeof text) && strstr(text, "track") != NULL;
}

static int under_prefix(const char *path) {
    return prefix_len > 0 && path && strncmp(path, prefix, prefix_len) == 0;
}

/* The fault for a call of kind `op` on `fd`: 0 none, an errno value to fail with, or -MS to sleep MS ms first.
 * `path` receives the file's path for the journal. */
static int fault_for(enum op op, int fd, char *path, size_t path_size) {
    if (!prefix || !control || prefix_len == 0)
        return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, path_size - 1);
    if (n < 0)
        return 0;
    path[n] = 0;
    if ((size_t)n < prefix_len || strncmp(path, prefix, prefix_len) != 0)
        return 0;
    char text[256];
    if (!read_control(text, sizeof text))
        return 0;
    const char *key = op == SYNC ? "fsync=" : "write=";
    char *at = strstr(text, key);
    if (!at)
        return 0;
    at += strlen(key);
    if (strncmp(at, "eio", 3) == 0)
        return EIO;
    if (strncmp(at, "enospc", 6) == 0)
        return ENOSPC;
    if (strncmp(at, "delay:", 6) == 0)
        return -atoi(at + 6);
    return 0;
}

/* Appends one line, "<what> <path>", to the journal (write(2) of the real libc: never intercepted, never recursive). */
static void journal(const char *what, const char *path) {
    char name[4096 + 8];
    snprintf(name, sizeof name, "%s.log", control);
    int fd = open(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    char line[4096 + 64];
    int n = snprintf(line, sizeof line, "%s %s\n", what, path);
    if (n > 0)
        real_write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    close(fd);
}

/* Applies the fault of a sync call: returns 0 to go on with the real call, -1 (errno set) to fail it. */
static int sync_fault(int fd) {
    char path[4096];
    int f = fault_for(SYNC, fd, path, sizeof path);
    if (f > 0) {
        journal("fsync eio", path);
        errno = f;
        return -1;
    }
    if (f < 0) {
        struct timespec ts = {(-f) / 1000, (long)((-f) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        journal("fsync delay", path);
    }
    return 0;
}

static int write_fault(int fd) {
    char path[4096];
    int f = fault_for(WRITE, fd, path, sizeof path);
    if (f > 0) {
        journal(f == ENOSPC ? "write enospc" : "write eio", path);
        errno = f;
        return -1;
    }
    return 0;
}

/* After a successful sync: journals the size the sync made durable, when tracking. */
static int synced(int fd, int result) {
    if (result != 0 || !tracking())
        return result;
    int saved = errno;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    struct stat st;
    if (n > 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        path[n] = 0;
        if (under_prefix(path)) {
            char what[64];
            snprintf(what, sizeof what, "synced %lld", (long long)st.st_size);
            /* "synced <size> <path>": the path last, as it may hold spaces. */
            journal(what, path);
        }
    }
    errno = saved;
    return result;
}

int fsync(int fd) { return sync_fault(fd) ? -1 : synced(fd, real_fsync(fd)); }
int fdatasync(int fd) { return sync_fault(fd) ? -1 : synced(fd, real_fdatasync(fd)); }

static void renamed(const char *old, const char *new_path) {
    if ((under_prefix(old) || under_prefix(new_path)) && tracking()) {
        char what[4096 + 16];
        snprintf(what, sizeof what, "rename %s", old);
        /* "rename <old> <new>" (RocksDB's names hold no spaces). */
        journal(what, new_path);
    }
}

int rename(const char *old, const char *new_path) {
    int r = real_rename(old, new_path);
    if (r == 0)
        renamed(old, new_path);
    return r;
}

int renameat(int olddirfd, const char *old, int newdirfd, const char *new_path) {
    int r = real_renameat(olddirfd, old, newdirfd, new_path);
    /* Only absolute names are journalled (what RocksDB and std::fs pass for the data folder). */
    if (r == 0 && old[0] == '/' && new_path[0] == '/')
        renamed(old, new_path);
    return r;
}
int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
    return sync_fault(fd) ? -1 : real_sync_file_range(fd, offset, nbytes, flags);
}

ssize_t write(int fd, const void *buf, size_t count) {
    /* Standard streams are never the data folder: skip the lookup for the log lines tlogd prints. */
    if (fd > 2 && write_fault(fd))
        return -1;
    return real_write(fd, buf, count);
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    return write_fault(fd) ? -1 : real_pwrite(fd, buf, count, offset);
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    return write_fault(fd) ? -1 : real_pwrite64(fd, buf, count, offset);
}
ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    if (fd > 2 && write_fault(fd))
        return -1;
    return real_writev(fd, iov, iovcnt);
}
ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    return write_fault(fd) ? -1 : real_pwritev(fd, iov, iovcnt, offset);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    return write_fault(fd) ? -1 : real_pwritev64(fd, iov, iovcnt, offset);
}
