/* libFuzzer: nn_load behind a checksum the harness repairs.  The last 4
 * bytes of every input are replaced by the CRC-32 of the rest, so each
 * mutation of the header, the sections, the layer records and the
 * parameters reaches the parser (and, when accepted, nn_compile and a
 * prediction and a training step: fz_use_model). */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init("load_crc");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nn_model *m = NULL;
    uint8_t *buf;
    const char *path;
    uint32_t crc;
    if (size < 8) return 0;
    buf = (uint8_t *)malloc(size);
    if (!buf) return 0;
    memcpy(buf, data, size);
    crc = fz_crc32(buf, size - 4);
    buf[size - 4] = (uint8_t)crc;
    buf[size - 3] = (uint8_t)(crc >> 8);
    buf[size - 2] = (uint8_t)(crc >> 16);
    buf[size - 1] = (uint8_t)(crc >> 24);
    path = fz_write(0, buf, size);
    if (path) {
        if (nn_load(&m, path) == NN_OK) {
            if (!m) abort();
            fz_use_model(m, buf, size);
        } else if (m) {
            abort();
        }
        nn_model_free(m);
    }
    free(buf);
    return 0;
}
