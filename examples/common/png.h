/* png.h - a dependency-free PNG writer for the examples (not part of the library).
 *
 *   int png_write_gray(const char *path, int w, int h, const unsigned char *pix);  w*h bytes
 *   int png_write_rgb (const char *path, int w, int h, const unsigned char *pix);  w*h*3 bytes (R,G,B)
 *
 * Rows top to bottom, 8 bits per sample.  Return 0 on success, -1 on a bad
 * argument, out of memory or an I/O error.  The image data is one zlib stream
 * of stored (uncompressed) deflate blocks of at most 65535 bytes, each row
 * with filter type 0 (none), in a single IDAT chunk; every chunk carries its
 * CRC-32 and the zlib stream its Adler-32.  Files are therefore about as big
 * as the raw pixels -- fine for the small pictures the examples draw. */
#ifndef EXAMPLES_PNG_H
#define EXAMPLES_PNG_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define PNG__UNUSED __attribute__((unused)) /* a program may use only one of the writers */
#else
#define PNG__UNUSED
#endif

static unsigned long png__crc_update(unsigned long crc, const unsigned char *p, size_t n) {
    /* CRC-32 (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320), bitwise: no table to set up */
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320UL & (0UL - (crc & 1UL)));
    }
    return crc;
}

static void png__be32(unsigned char *p, unsigned long v) {
    p[0] = (unsigned char)((v >> 24) & 0xFF);
    p[1] = (unsigned char)((v >> 16) & 0xFF);
    p[2] = (unsigned char)((v >> 8) & 0xFF);
    p[3] = (unsigned char)(v & 0xFF);
}

/* length, type, data, CRC-32 over type and data */
static int png__chunk(FILE *f, const char *type, const unsigned char *data, size_t n) {
    unsigned char b[4];
    unsigned long crc = 0xFFFFFFFFUL;
    if (n > 0x7FFFFFFFUL) return -1;
    png__be32(b, (unsigned long)n);
    if (fwrite(b, 1, 4, f) != 4 || fwrite(type, 1, 4, f) != 4) return -1;
    crc = png__crc_update(crc, (const unsigned char *)type, 4);
    if (n) {
        if (fwrite(data, 1, n, f) != n) return -1;
        crc = png__crc_update(crc, data, n);
    }
    png__be32(b, crc ^ 0xFFFFFFFFUL);
    return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}

/* channels: 1 (gray, colour type 0) or 3 (RGB, colour type 2) */
static int png__write(const char *path, int w, int h, int channels, const unsigned char *pix) {
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    unsigned char ihdr[13], *z, *q;
    size_t row, raw, nblocks, zlen, i, left;
    unsigned long a = 1, b = 0; /* Adler-32 */
    FILE *f;
    int y, rc;
    if (!path || !pix || w <= 0 || h <= 0 || (channels != 1 && channels != 3)) return -1;
    row = (size_t)w * (size_t)channels + 1; /* filter byte + samples */
    if ((size_t)w > 0x7FFFFFF0UL / (size_t)channels || (size_t)h > 0x7FFFFFF0UL / row) return -1;
    raw = row * (size_t)h;
    nblocks = (raw + 65534) / 65535;
    zlen = 2 + raw + 5 * nblocks + 4;
    if (zlen > 0x7FFFFFFFUL) return -1;
    z = (unsigned char *)malloc(zlen);
    if (!z) return -1;
    /* zlib header: CM 8 (deflate), CINFO 7 (32K window), FLEVEL 0, FCHECK so that 0x7801 % 31 == 0 */
    q = z;
    *q++ = 0x78;
    *q++ = 0x01;
    /* stored blocks over the filtered scanlines, filled row by row */
    left = 0;
    i = 0; /* bytes of the raw stream emitted so far */
    for (y = 0; y < h; y++) {
        size_t k;
        const unsigned char *src = pix + (size_t)y * (row - 1);
        for (k = 0; k < row; k++) {
            unsigned char c = k ? src[k - 1] : 0; /* filter type 0 */
            if (left == 0) {                    /* start a block: BFINAL, BTYPE 00, then LEN and NLEN (LE) */
                size_t len = raw - i < 65535 ? raw - i : 65535;
                *q++ = (unsigned char)(i + len == raw ? 1 : 0);
                *q++ = (unsigned char)(len & 0xFF);
                *q++ = (unsigned char)(len >> 8);
                *q++ = (unsigned char)(~len & 0xFF);
                *q++ = (unsigned char)((~len >> 8) & 0xFF);
                left = len;
            }
            *q++ = c;
            left--;
            i++;
            a += c;
            if (a >= 65521) a -= 65521;
            b += a;
            if (b >= 65521) b -= 65521;
        }
    }
    png__be32(q, (b << 16) | a);
    q += 4;
    f = fopen(path, "wb");
    if (!f) {
        free(z);
        return -1;
    }
    png__be32(ihdr, (unsigned long)w);
    png__be32(ihdr + 4, (unsigned long)h);
    ihdr[8] = 8;                                   /* bit depth */
    ihdr[9] = (unsigned char)(channels == 1 ? 0 : 2); /* colour type */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;            /* deflate, adaptive filtering, no interlace */
    rc = fwrite(sig, 1, 8, f) == 8 ? 0 : -1;
    if (!rc) rc = png__chunk(f, "IHDR", ihdr, 13);
    if (!rc) rc = png__chunk(f, "IDAT", z, (size_t)(q - z));
    if (!rc) rc = png__chunk(f, "IEND", NULL, 0);
    if (fclose(f) != 0) rc = -1;
    free(z);
    return rc;
}

PNG__UNUSED static int png_write_gray(const char *path, int w, int h, const unsigned char *pix) {
    return png__write(path, w, h, 1, pix);
}
PNG__UNUSED static int png_write_rgb(const char *path, int w, int h, const unsigned char *pix) {
    return png__write(path, w, h, 3, pix);
}
#endif
