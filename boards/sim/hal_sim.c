/* The `sim` board: the firmware's app and main loop on this machine, its UART a pseudo-terminal.
 *
 *   firmware [--model FILE] [--pty-file PATH]
 *
 * Opens a pty (posix_openpt), prints "edgeq-sim: pty /dev/pts/N" on stdout and, with --pty-file,
 * writes the slave path to PATH (atomically, through a rename). --model FILE plays the flash model
 * region. Idle = poll() on the pty, the host equivalent of WFI + RX interrupt. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "eq_board.h"
#include "eq_hal.h"

static int master = -1, slave = -1;
static uint8_t flash[EQ_MODEL_REGION_SIZE] __attribute__((aligned(8)));
static uint32_t flash_size;

static void die(const char *what)
{
    fprintf(stderr, "edgeq-sim: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void load_model(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    size_t n = fread(flash, 1, sizeof flash, f);
    if (ferror(f))
        die(path);
    if (fgetc(f) != EOF) {
        fprintf(stderr, "edgeq-sim: %s is larger than the %u-byte model region\n", path,
                (unsigned)sizeof flash);
        exit(1);
    }
    fclose(f);
    flash_size = (uint32_t)n;
}

void eq_hal_init(int argc, char **argv)
{
    const char *pty_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            load_model(argv[++i]);
        else if (!strcmp(argv[i], "--pty-file") && i + 1 < argc)
            pty_file = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--model FILE] [--pty-file PATH]\n", argv[0]);
            exit(2);
        }
    }
    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master))
        die("posix_openpt");
    const char *name = ptsname(master);
    if (!name)
        die("ptsname");
    /* keep a slave fd open ourselves: raw mode sticks, and a host that disconnects does not
     * make the master report hang-up */
    slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0)
        die(name);
    struct termios t;
    if (tcgetattr(slave, &t))
        die("tcgetattr");
    cfmakeraw(&t);
    if (tcsetattr(slave, TCSANOW, &t))
        die("tcsetattr");
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    if (pty_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", pty_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", name) < 0 || fclose(f) || rename(tmp, pty_file))
            die(pty_file);
    }
    printf("edgeq-sim: pty %s\n", name);
    fflush(stdout);
}

void eq_hal_tx(const uint8_t *p, uint32_t n)
{
    while (n) {
        ssize_t k = write(master, p, n);
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                struct pollfd pf = {master, POLLOUT, 0};
                poll(&pf, 1, 100);
                continue;
            }
            die("write");
        }
        p += k;
        n -= (uint32_t)k;
    }
}

void eq_hal_idle(void)
{
    struct pollfd pf = {master, POLLIN, 0};
    if (poll(&pf, 1, 1000) <= 0)
        return;
    uint8_t buf[4096];
    ssize_t k = read(master, buf, sizeof buf);
    for (ssize_t i = 0; i < k; i++)
        eq_rx_push(buf[i]);
    if (k <= 0 && errno != EAGAIN && errno != EINTR) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL); /* no reader yet: do not spin */
    }
}

uint32_t eq_hal_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

/* a host process is timed by the OS clock: nothing to hold back */
void eq_hal_timed_begin(void) {}
void eq_hal_timed_end(void) {}

const uint8_t *eq_hal_flash_model(uint32_t *size)
{
    *size = flash_size;
    return flash_size ? flash : NULL;
}
