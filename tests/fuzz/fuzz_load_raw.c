/* libFuzzer: nn_load on raw bytes (the CRC rejects nearly every mutation:
 * this one covers the framing, the size limits and the checksum itself;
 * fuzz_load_crc.c reaches the parser).  An accepted model is then used
 * (fz_use_model). */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init("load_raw");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nn_model *m = NULL;
    const char *path = fz_write(0, data, size);
    if (!path) return 0;
    if (nn_load(&m, path) == NN_OK) {
        if (!m) abort(); /* NN_OK must come with a model */
        fz_use_model(m, data, size);
    } else if (m) {
        abort(); /* a failed load must leave *out NULL */
    }
    nn_model_free(m);
    return 0;
}
