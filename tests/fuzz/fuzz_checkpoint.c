/* libFuzzer target: the checkpoint reader, dpt_checkpoint_read, and the summary printer.
 *
 * Input: byte 0 = mode, then the file's bytes. Mode bit 0 appends the correct SHA-256 of the
 * bytes, so the fuzzer also reaches files that verify (whose sections are then read back and
 * printed); otherwise the bytes are the whole file. */
#include <openssl/evp.h>

#include "dptrain/checkpoint.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int fix_hash = data[0] & 1;
    data++, size--;
    char path[512];
    fz_path(path, sizeof path, "ckpt");
    if (fix_hash) {
        uint8_t *buf = malloc(size + 32);
        unsigned hl = 0;
        if (!buf) abort();
        if (size) memcpy(buf, data, size);
        if (EVP_Digest(data, size, buf + size, &hl, EVP_sha256(), NULL) != 1 || hl != 32) abort();
        fz_write(path, buf, size + 32);
        free(buf);
    } else {
        fz_write(path, data, size);
    }
    dpt_checkpoint_t *c = NULL;
    dpt_status_t s = dpt_checkpoint_read(path, &c);
    fz_check_status(s);
    if (s != DPT_OK) {
        if (c) abort();
        return 0;
    }
    size_t n = dpt_checkpoint_section_count(c);
    for (size_t i = 0; i < n; i++) {
        const char *name = dpt_checkpoint_section_name(c, i);
        size_t bytes = 0;
        const uint8_t *p = dpt_checkpoint_section(c, name, &bytes);
        if (!p || bytes != dpt_checkpoint_section_bytes(c, i) || ((uintptr_t)p & 63)) abort();
        volatile uint8_t sink = 0;
        for (size_t j = 0; j < bytes; j++)
            sink ^= p[j]; /* every byte is readable */
        (void)sink;
    }
    if (strlen(dpt_checkpoint_sha256_hex(c)) != 64) abort();
    static FILE *devnull;
    if (!devnull && !(devnull = fopen("/dev/null", "w"))) abort();
    dpt_checkpoint_print_summary(devnull, path, c);
    dpt_checkpoint_free(c);
    return 0;
}
