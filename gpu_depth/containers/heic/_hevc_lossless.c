/* The slice data of a lossless monochrome 8-bit HEVC intra picture (hevc_lossless.py writes the parameter sets,
 * the slice header and the item).  Every CU is coded with cu_transquant_bypass: an intra prediction (planar, DC,
 * horizontal or vertical) from the neighbouring samples, which lossless coding makes the original samples, and
 * the prediction's residual as its "coefficients".  A CU whose prediction is exact (most of a matte: flat 0 or 255)
 * costs a few bits; a CTU is split down to 8x8 CUs where that lowers an estimate of the residual's bits.
 *
 * The picture: 32x32 CTBs, CUs 8-32, one TB per CU (no transform tree), no PCM, SAO, deblocking, sign hiding,
 * scaling lists or range-extension tools, one slice at slice QP 26 (H.265 sections 7.3.8, 8.4.4.2, 9.3).
 * The CABAC coder is HM's (as libde265's encoder writes it); the context and intra rules follow H.265 as
 * libde265 decodes it. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../_buffers.h"

/* ------------------------------------------------------------------------------------------------ CABAC */

static const uint8_t LPS_TABLE[64][4] = {
    {128, 176, 208, 240}, {128, 167, 197, 227}, {128, 158, 187, 216}, {123, 150, 178, 205}, {116, 142, 169, 195},
    {111, 135, 160, 185}, {105, 128, 152, 175}, {100, 122, 144, 166}, {95, 116, 137, 158}, {90, 110, 130, 150},
    {85, 104, 123, 142},  {81, 99, 117, 135},   {77, 94, 111, 128},   {73, 89, 105, 122},   {69, 85, 100, 116},
    {66, 80, 95, 110},    {62, 76, 90, 104},    {59, 72, 86, 99},     {56, 69, 81, 94},     {53, 65, 77, 89},
    {51, 62, 73, 85},     {48, 59, 69, 80},     {46, 56, 66, 76},     {43, 53, 63, 72},     {41, 50, 59, 69},
    {39, 48, 56, 65},     {37, 45, 54, 62},     {35, 43, 51, 59},     {33, 41, 48, 56},     {32, 39, 46, 53},
    {30, 37, 43, 50},     {29, 35, 41, 48},     {27, 33, 39, 45},     {26, 31, 37, 43},     {24, 30, 35, 41},
    {23, 28, 33, 39},     {22, 27, 32, 37},     {21, 26, 30, 35},     {20, 24, 29, 33},     {19, 23, 27, 31},
    {18, 22, 26, 30},     {17, 21, 25, 28},     {16, 20, 23, 27},     {15, 19, 22, 25},     {14, 18, 21, 24},
    {14, 17, 20, 23},     {13, 16, 19, 22},     {12, 15, 18, 21},     {12, 14, 17, 20},     {11, 14, 16, 19},
    {11, 13, 15, 18},     {10, 12, 15, 17},     {10, 12, 14, 16},     {9, 11, 13, 15},      {9, 11, 12, 14},
    {8, 10, 12, 14},      {8, 9, 11, 13},       {7, 9, 11, 12},       {7, 9, 10, 12},       {7, 8, 10, 11},
    {6, 8, 9, 11},        {6, 7, 9, 10},        {6, 7, 8, 9},         {2, 2, 2, 2}};
static const uint8_t NEXT_MPS[64] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
                                     33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
                                     49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 62, 63};
static const uint8_t NEXT_LPS[64] = {0,  0,  1,  2,  2,  4,  4,  5,  6,  7,  8,  9,  9,  11, 11, 12,
                                     13, 13, 15, 15, 16, 16, 18, 18, 19, 19, 21, 21, 22, 22, 23, 24,
                                     24, 25, 26, 26, 27, 27, 28, 29, 29, 30, 30, 30, 31, 32, 32, 33,
                                     33, 33, 34, 34, 35, 35, 35, 36, 36, 36, 37, 37, 37, 38, 38, 63};
static const uint8_t RENORM[32] = {6, 5, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2,
                                   1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

/* The contexts this coder uses, at their place in CONTEXT_INIT (the I-slice init values of H.265 9.3.2.2). */
enum {
    SPLIT_CU = 0,       /* 3 */
    TRANSQUANT = 3,     /* 1 */
    PART_MODE = 4,      /* 1 */
    PREV_INTRA = 5,     /* 1 */
    CBF_LUMA = 6,       /* 2 */
    LAST_X = 8,         /* 18 (luma 15 used) */
    LAST_Y = 26,        /* 18 */
    CODED_SUB = 44,     /* 4 (luma 2 used) */
    SIGNIFICANT = 48,   /* 42 (luma 27 used) */
    GREATER1 = 90,      /* 24 (luma 16 used) */
    GREATER2 = 114,     /* 6 (luma 4 used) */
    CONTEXTS = 120
};
static const uint8_t CONTEXT_INIT[] = {
    139, 141, 157,                                                                              /* split_cu_flag */
    154,                                                                                        /* transquant */
    184,                                                                                        /* part_mode */
    184,                                                                                        /* prev_intra */
    111, 141,                                                                                   /* cbf_luma */
    110, 110, 124, 125, 140, 153, 125, 127, 140, 109, 111, 143, 127, 111, 79,  108, 123, 63,  /* last x */
    110, 110, 124, 125, 140, 153, 125, 127, 140, 109, 111, 143, 127, 111, 79,  108, 123, 63,  /* last y */
    91,  171, 134, 141,                                                                         /* coded_sub_block */
    111, 111, 125, 110, 110, 94,  124, 108, 124, 107, 125, 141, 179, 153, 125, 107, 125, 141, 179, 153, 125,
    107, 125, 141, 179, 153, 125, 140, 139, 182, 182, 152, 136, 152, 136, 153, 136, 139, 111, 136, 139, 111,
    140, 92,  137, 138, 140, 152, 138, 139, 153, 74,  149, 92,  139, 107, 122, 152, 140, 179, 166, 182, 140,
    227, 122, 197,                                                                              /* greater1 */
    138, 153, 136, 167, 152, 152,                                                               /* greater2 */
};
_Static_assert(sizeof CONTEXT_INIT == CONTEXTS, "one init value a context");
#define SLICE_QP 26

typedef struct {
    uint8_t state, mps;
} Context;

typedef struct {
    uint8_t *data;
    size_t size, capacity;
    uint32_t low, range;
    int bits_left, buffered_byte, buffered;
    uint32_t bit_buffer; /* the trailing bits after the CABAC data */
    int bit_count;
    int failed; /* out of memory */
    Context contexts[CONTEXTS];
} Coder;

static void append(Coder *c, int byte) {
    if (c->size == c->capacity) {
        size_t capacity = c->capacity ? 2 * c->capacity : 1 << 16;
        uint8_t *data = realloc(c->data, capacity);
        if (!data) {
            c->failed = 1;
            return;
        }
        c->data = data, c->capacity = capacity;
    }
    c->data[c->size++] = (uint8_t)byte;
}

static void coder_init(Coder *c) {
    memset(c, 0, sizeof *c);
    c->range = 510, c->bits_left = 23, c->buffered_byte = 0xFF;
    for (int i = 0; i < CONTEXTS; i++) {
        int slope = CONTEXT_INIT[i] >> 4, offset = CONTEXT_INIT[i] & 15;
        int state = ((slope * 5 - 45) * SLICE_QP >> 4) + (offset << 3) - 16;
        state = state < 1 ? 1 : state > 126 ? 126 : state;
        c->contexts[i].mps = state > 63;
        c->contexts[i].state = (uint8_t)(state > 63 ? state - 64 : 63 - state);
    }
}

static void write_out(Coder *c) {
    int lead = (int)(c->low >> (24 - c->bits_left));
    c->bits_left += 8;
    c->low &= 0xFFFFFFFFu >> c->bits_left;
    if (lead == 0xFF) {
        c->buffered++;
    } else if (c->buffered > 0) {
        int carry = lead >> 8;
        append(c, c->buffered_byte + carry);
        c->buffered_byte = lead & 0xFF;
        for (; c->buffered > 1; c->buffered--) append(c, (0xFF + carry) & 0xFF);
    } else {
        c->buffered = 1, c->buffered_byte = lead;
    }
}

static inline void test_write_out(Coder *c) {
    if (c->bits_left < 12) write_out(c);
}

static void encode_bin(Coder *c, int index, int bin) {
    Context *m = &c->contexts[index];
    uint32_t lps = LPS_TABLE[m->state][(c->range >> 6) - 4];
    c->range -= lps;
    if (bin != m->mps) {
        int shift = RENORM[lps >> 3];
        c->low = (c->low + c->range) << shift;
        c->range = lps << shift;
        if (m->state == 0) m->mps = (uint8_t)(1 - m->mps);
        m->state = NEXT_LPS[m->state];
        c->bits_left -= shift;
    } else {
        m->state = NEXT_MPS[m->state];
        if (c->range >= 256) return;
        c->low <<= 1, c->range <<= 1, c->bits_left--;
    }
    test_write_out(c);
}

static void encode_bypass(Coder *c, int bin) {
    c->low <<= 1;
    if (bin) c->low += c->range;
    c->bits_left--;
    test_write_out(c);
}

static void encode_bypass_bits(Coder *c, uint32_t value, int bits) {
    while (bits-- > 0) encode_bypass(c, (value >> bits) & 1);
}

static void encode_terminate(Coder *c, int bin) {
    c->range -= 2;
    if (bin) {
        c->low += c->range;
        c->low <<= 7, c->range = 2 << 7, c->bits_left -= 7;
    } else if (c->range >= 256) {
        return;
    } else {
        c->low <<= 1, c->range <<= 1, c->bits_left--;
    }
    test_write_out(c);
}

static void put_bits(Coder *c, uint32_t bits, int count) {
    c->bit_buffer = c->bit_buffer << count | bits;
    c->bit_count += count;
    for (; c->bit_count >= 8; c->bit_count -= 8) append(c, (int)(c->bit_buffer >> (c->bit_count - 8)) & 0xFF);
}

/* The CABAC data's last bits, then rbsp_slice_segment_trailing_bits (a one, zeros to the byte's end). */
static void finish(Coder *c) {
    if (c->low >> (32 - c->bits_left)) {
        append(c, c->buffered_byte + 1);
        for (; c->buffered > 1; c->buffered--) append(c, 0x00);
        c->low -= 1u << (32 - c->bits_left);
    } else {
        if (c->buffered > 0) append(c, c->buffered_byte);
        for (; c->buffered > 1; c->buffered--) append(c, 0xFF);
    }
    put_bits(c, c->low >> 8, 24 - c->bits_left);
    put_bits(c, 1, 1);
    if (c->bit_count) put_bits(c, 0, 8 - c->bit_count);
}

/* ------------------------------------------------------------------------------------------------ picture */

#define CTB_LOG2 5
#define CTB 32
#define MIN_CB 8
enum { PLANAR = 0, DC = 1, HORIZONTAL = 10, VERTICAL = 26 };

typedef struct {
    const uint8_t *pixels; /* the coded picture, width x height, both multiples of 8 */
    int width, height, ctb_columns;
    int blocks_wide;      /* 8x8 blocks a row */
    uint8_t *cu_log2;     /* per 8x8 block: its CU's log2 size (the chosen split) */
    uint8_t *mode;        /* per 8x8 block: its CU's intra mode */
    uint8_t *coded;       /* per 8x8 block: whether its CU has a residual */
    int16_t residual[CTB * CTB]; /* the current CTU's residual, as choose() left it */
} Picture;

/* The z-scan address of the 4x4 block holding (x, y) (H.265 6.5.2, one tile). */
static inline uint32_t z_address(const Picture *p, int x, int y) {
    uint32_t ctb = (uint32_t)((y >> CTB_LOG2) * p->ctb_columns + (x >> CTB_LOG2)), morton = 0;
    int bx = (x & (CTB - 1)) >> 2, by = (y & (CTB - 1)) >> 2;
    for (int i = 0; i < CTB_LOG2 - 2; i++) morton |= (uint32_t)(((bx >> i) & 1) << (2 * i) | ((by >> i) & 1) << (2 * i + 1));
    return ctb << (2 * (CTB_LOG2 - 2)) | morton;
}

/* A neighbouring sample (xn, yn) of the block at (x, y): inside the picture and decoded before the block. */
static inline int available(const Picture *p, int x, int y, int xn, int yn) {
    return xn >= 0 && yn >= 0 && xn < p->width && yn < p->height && z_address(p, xn, yn) <= z_address(p, x, y);
}

/* The block's reference samples, substituted where not available (8.4.4.2.2): border[0] the corner,
 * border[1 + i] the row above (i < 2n), border[-1 - i] the column to the left. */
static void references(const Picture *p, int x, int y, int n, int *border) {
    int known[4 * 32 + 1] = {0}, *ok = known + 2 * n, any = 0;
    const uint8_t *image = p->pixels;
    for (int i = 0; i < 2 * n; i += 4) {
        if (available(p, x, y, x - 1, y + i)) {
            for (int k = 0; k < 4; k++) border[-1 - i - k] = image[(size_t)(y + i + k) * p->width + x - 1], ok[-1 - i - k] = 1;
            any = 1;
        }
        if (available(p, x, y, x + i, y - 1)) {
            for (int k = 0; k < 4; k++) border[1 + i + k] = image[(size_t)(y - 1) * p->width + x + i + k], ok[1 + i + k] = 1;
            any = 1;
        }
    }
    if (available(p, x, y, x - 1, y - 1)) border[0] = image[(size_t)(y - 1) * p->width + x - 1], ok[0] = any = 1;
    if (!any) {
        for (int i = -2 * n; i <= 2 * n; i++) border[i] = 128;
        return;
    }
    if (!ok[-2 * n]) {
        int i = -2 * n;
        while (!ok[i]) i++;
        border[-2 * n] = border[i];
    }
    for (int i = -2 * n + 1; i <= 2 * n; i++)
        if (!ok[i]) border[i] = border[i - 1];
}

static inline int clip8(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

static const int ANGLE[35] = {0,   0,   32,  26,  21,  17,  13,  9,  5,  2,  0,  -2, -5, -9, -13, -17, -21, -26,
                               -32, -26, -21, -17, -13, -9, -5, -2, 0,  2,  5,  9,  13, 17, 21,  26,  32};
static const int INVERSE_ANGLE[15] = {-4096, -1638, -910, -630, -482, -390, -315, -256,
                                      -315,  -390,  -482, -630, -910, -1638, -4096};

/* Angular prediction (8.4.4.2.6) from the border, the boundary filters of modes 10 and 26 included. */
static void angular(int mode, int n, const int *border, int16_t *out) {
    int angle = ANGLE[mode], vertical = mode >= 18;
    int16_t references[3 * 32 + 1], *ref = references + 32;
    int sign = vertical ? 1 : -1; /* the vertical modes read the row above, the horizontal ones the column */
    for (int x = 0; x <= n; x++) ref[x] = (int16_t)border[sign * x];
    if (angle < 0) {
        int inverse = INVERSE_ANGLE[mode - 11];
        for (int x = (n * angle) >> 5; x <= -1; x++) ref[x] = (int16_t)border[-sign * ((x * inverse + 128) >> 8)];
    } else {
        for (int x = n + 1; x <= 2 * n; x++) ref[x] = (int16_t)border[sign * x];
    }
    for (int i = 0; i < n; i++) { /* row i of a vertical mode, column i of a horizontal one */
        int index = ((i + 1) * angle) >> 5, fraction = ((i + 1) * angle) & 31;
        const int16_t *from = ref + index + 1;
        int16_t line[32];
        if (fraction)
            for (int j = 0; j < n; j++) line[j] = (int16_t)(((32 - fraction) * from[j] + fraction * from[j + 1] + 16) >> 5);
        else
            memcpy(line, from, sizeof *line * (size_t)n);
        if (vertical)
            memcpy(out + i * n, line, sizeof *line * (size_t)n);
        else
            for (int j = 0; j < n; j++) out[j * n + i] = line[j];
    }
    if (n < 32 && mode == VERTICAL)
        for (int y = 0; y < n; y++) out[y * n] = (int16_t)clip8(border[1] + ((border[-1 - y] - border[0]) >> 1));
    if (n < 32 && mode == HORIZONTAL)
        for (int x = 0; x < n; x++) out[x] = (int16_t)clip8(border[-1] + ((border[1 + x] - border[0]) >> 1));
}

/* Whether `mode` predicts an n x n block from the filtered references (8.4.4.2.3, no strong smoothing). */
static int uses_filtered(int mode, int n) {
    int distance = abs(mode - 26) < abs(mode - 10) ? abs(mode - 26) : abs(mode - 10);
    return mode != DC && n > 4 && distance > (n == 8 ? 7 : n == 16 ? 1 : 0);
}

/* The [1 2 1] filter of the 4n + 1 references, the two ends kept (8.4.4.2.3). */
static void smooth(const int *border, int n, int *out) {
    out[-2 * n] = border[-2 * n], out[2 * n] = border[2 * n];
    for (int i = -2 * n + 1; i < 2 * n; i++) out[i] = (border[i + 1] + 2 * border[i] + border[i - 1] + 2) >> 2;
}

/* The n x n intra prediction of `mode` from the (substituted) border (8.4.4.2.3-6, luma). */
static void predict(int mode, int n, const int *border, int log2, int16_t *out) {
    int filtered[4 * 32 + 1];
    if (uses_filtered(mode, n)) {
        smooth(border, n, filtered + 2 * n);
        border = filtered + 2 * n;
    }
    if (mode == PLANAR) {
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
                out[y * n + x] = (int16_t)(((n - 1 - x) * border[-1 - y] + (x + 1) * border[1 + n] +
                                            (n - 1 - y) * border[1 + x] + (y + 1) * border[-1 - n] + n) >> (log2 + 1));
    } else if (mode == DC) {
        int dc = n;
        for (int i = 0; i < n; i++) dc += border[1 + i] + border[-1 - i];
        dc >>= log2 + 1;
        for (int i = 0; i < n * n; i++) out[i] = (int16_t)dc;
        if (n < 32) {
            out[0] = (int16_t)((border[-1] + 2 * dc + border[1] + 2) >> 2);
            for (int i = 1; i < n; i++) {
                out[i] = (int16_t)((border[1 + i] + 3 * dc + 2) >> 2);
                out[i * n] = (int16_t)((border[-1 - i] + 3 * dc + 2) >> 2);
            }
        }
    } else {
        angular(mode, n, border, out);
    }
}

static inline int line_cost(const uint8_t *samples, const int16_t *predicted, int n) {
    int total = 0;
    for (int j = 0; j < n; j++) {
        int d = samples[j] - predicted[j];
        total += (d < 0 ? -d : d) + 3 * (d != 0);
    }
    return total;
}

/* The cost of a prediction, an estimate of its residual's bits: per sample |residual| + 3 where not 0. */
static int cost(const Picture *p, int x, int y, int n, const int16_t *prediction) {
    int total = 0;
    for (int r = 0; r < n; r++) total += line_cost(p->pixels + (size_t)(y + r) * p->width + x, prediction + r * n, n);
    return total;
}

/* The residual of a prediction: original - predicted. */
static void difference(const Picture *p, int x, int y, int n, const int16_t *prediction, int16_t *out) {
    for (int r = 0; r < n; r++) {
        const uint8_t *row = p->pixels + (size_t)(y + r) * p->width + x;
        for (int col = 0; col < n; col++) out[r * n + col] = (int16_t)(row[col] - prediction[r * n + col]);
    }
}

/* Whether the block is all one value and so are the references DC prediction reads: then DC is exact. */
static int flat(const Picture *p, int x, int y, int n, const int *border) {
    int value = p->pixels[(size_t)y * p->width + x];
    for (int i = 1; i <= n; i++)
        if (border[i] != value || border[-i] != value) return 0;
    for (int r = 0; r < n; r++) {
        const uint8_t *row = p->pixels + (size_t)(y + r) * p->width + x;
        for (int col = 0; col < n; col++)
            if (row[col] != value) return 0;
    }
    return 1;
}

/* The modes an 8x8 CU tries first: the four of flat and smooth areas, then every fourth angle. */
static const int FIRST_MODES[11] = {DC, PLANAR, HORIZONTAL, VERTICAL, 2, 18, 34, 6, 14, 22, 30};

/* A block under mode trial: its samples as rows and as columns, its references plain and [1 2 1]-filtered. */
typedef struct {
    int n, log2, filtered_borders[4 * 32 + 1], *filtered;
    const int *border;
    uint8_t rows[32 * 32], columns[32 * 32];
} Trial;

static void trial_block(const Picture *p, int x, int y, int log2, const int *border, Trial *t) {
    int n = 1 << log2;
    t->n = n, t->log2 = log2, t->border = border, t->filtered = t->filtered_borders + 2 * n;
    smooth(border, n, t->filtered);
    for (int r = 0; r < n; r++) {
        memcpy(t->rows + r * n, p->pixels + (size_t)(y + r) * p->width + x, (size_t)n);
        for (int c = 0; c < n; c++) t->columns[c * n + r] = t->rows[r * n + c];
    }
}

/* An estimate of `mode`'s residual bits (|residual| + 3 a non-zero sample) from every other line, without the
 * boundary filters of DC and modes 10 and 26: a trial's, not the coded prediction. */
static int trial_cost(const Trial *t, int mode) {
    int n = t->n, total = 0;
    const int *b = uses_filtered(mode, n) ? t->filtered : t->border;
    int16_t line[32];
    if (mode == DC || mode == PLANAR) {
        int dc = n;
        for (int i = 0; i < n; i++) dc += b[1 + i] + b[-1 - i];
        dc >>= t->log2 + 1;
        for (int y = 0; y < n; y += 2) {
            for (int x = 0; x < n; x++)
                line[x] = (int16_t)(mode == DC ? dc
                                               : ((n - 1 - x) * b[-1 - y] + (x + 1) * b[1 + n] + (n - 1 - y) * b[1 + x] +
                                                  (y + 1) * b[-1 - n] + n) >> (t->log2 + 1));
            total += line_cost(t->rows + y * n, line, n);
        }
        return 2 * total;
    }
    int angle = ANGLE[mode], vertical = mode >= 18, sign = vertical ? 1 : -1;
    int16_t references[3 * 32 + 1], *ref = references + 32;
    for (int i = 0; i <= n; i++) ref[i] = (int16_t)b[sign * i];
    if (angle < 0) {
        int inverse = INVERSE_ANGLE[mode - 11];
        for (int i = (n * angle) >> 5; i <= -1; i++) ref[i] = (int16_t)b[-sign * ((i * inverse + 128) >> 8)];
    } else {
        for (int i = n + 1; i <= 2 * n; i++) ref[i] = (int16_t)b[sign * i];
    }
    const uint8_t *samples = vertical ? t->rows : t->columns;
    for (int i = 0; i < n; i += 2) {
        int index = ((i + 1) * angle) >> 5, fraction = ((i + 1) * angle) & 31;
        const int16_t *from = ref + index + 1;
        for (int j = 0; j < n; j++) line[j] = (int16_t)(((32 - fraction) * from[j] + fraction * from[j + 1] + 16) >> 5);
        total += line_cost(samples + i * n, line, n);
    }
    return 2 * total;
}

static inline void consider(const Trial *t, int mode, int *best, int *chosen) {
    int cost = trial_cost(t, mode);
    if (*best < 0 || cost < *best) *best = cost, *chosen = mode;
}

/* The mode of least trial cost for the block with references `border` among `candidates` (the best angle then
 * refined by its neighbours `reach` and fewer apart), its residual in `out` (n x n) and its true cost. */
static int best_mode(const Picture *p, int x, int y, int log2, const int *border, const int *candidates, int count,
                     int reach, int *mode, int16_t *out) {
    int n = 1 << log2;
    Trial t;
    trial_block(p, x, y, log2, border, &t);
    int best = -1, chosen = DC;
    for (int i = 0; i < count && best; i++) consider(&t, candidates[i], &best, &chosen);
    for (int step = reach; step >= 1 && best && chosen >= 2; step--) {
        int centre = chosen;
        if (centre - step >= 2) consider(&t, centre - step, &best, &chosen);
        if (centre + step <= 34) consider(&t, centre + step, &best, &chosen);
    }
    int16_t prediction[32 * 32];
    predict(chosen, n, t.border, log2, prediction);
    difference(p, x, y, n, prediction, out);
    *mode = chosen;
    return cost(p, x, y, n, prediction);
}

static int block_value(const Picture *p, const uint8_t *map, int x, int y) {
    return map[(size_t)(y >> 3) * p->blocks_wide + (x >> 3)];
}

static void set_blocks(Picture *p, int x, int y, int log2, uint8_t *map, uint8_t value) {
    int count = 1 << (log2 - 3);
    for (int j = 0; j < count; j++) memset(map + (size_t)((y >> 3) + j) * p->blocks_wide + (x >> 3), value, (size_t)count);
}

/* The block's CU: its size, mode, whether it has a residual, and the residual in the CTU's buffer. */
static void keep(Picture *p, int x, int y, int log2, int mode, int bits, const int16_t *values) {
    int n = 1 << log2;
    set_blocks(p, x, y, log2, p->cu_log2, (uint8_t)log2);
    set_blocks(p, x, y, log2, p->mode, (uint8_t)mode);
    set_blocks(p, x, y, log2, p->coded, bits > 0);
    for (int r = 0; r < n; r++) memcpy(p->residual + ((y & (CTB - 1)) + r) * CTB + (x & (CTB - 1)), values + r * n, sizeof *values * (size_t)n);
}

/* The estimated bits of a CU's header. */
#define CU_BITS 8

/* Choose the CU tree of the block at (x, y), bottom-up: an 8x8 CU's mode from FIRST_MODES, a larger CU's from DC,
 * planar and its quarters' modes; the larger CU where its estimated bits (CU_BITS its header) are no more than its
 * quarters'.  Returns the bits. */
static int choose(Picture *p, int x, int y, int log2) {
    int n = 1 << log2, inside = x + n <= p->width && y + n <= p->height, mode = DC, bits;
    int borders[4 * 32 + 1], *border = borders + 2 * n;
    int16_t values[32 * 32];
    if (inside) references(p, x, y, n, border);
    if (inside && flat(p, x, y, n, border)) {
        memset(values, 0, sizeof *values * (size_t)(n * n));
        keep(p, x, y, log2, DC, 0, values);
        return CU_BITS;
    }
    if (inside && log2 == 3) {
        bits = best_mode(p, x, y, log2, border, FIRST_MODES, 11, 2, &mode, values);
        keep(p, x, y, log2, mode, bits, values);
        return bits + CU_BITS;
    }
    int half = n >> 1, split = 0, candidates[6] = {DC, PLANAR}, count = 2;
    for (int i = 0; i < 4; i++) {
        int cx = x + (i & 1) * half, cy = y + (i >> 1) * half;
        if (cx >= p->width || cy >= p->height) continue;
        split += choose(p, cx, cy, log2 - 1);
        int quarter = block_value(p, p->mode, cx, cy), known = 0;
        for (int j = 0; j < count; j++) known |= candidates[j] == quarter;
        if (!known) candidates[count++] = quarter;
    }
    if (!inside) return split;
    bits = best_mode(p, x, y, log2, border, candidates, count, 1, &mode, values) + CU_BITS;
    if (bits > split) return split;
    keep(p, x, y, log2, mode, bits - CU_BITS, values);
    return bits;
}

/* ------------------------------------------------------------------------------------------------ syntax */

typedef struct {
    int8_t x, y;
} Position;

/* Scan orders (6.5.3-5): [kind][log2 size 0..3][index], kind 0 up-right diagonal, 1 horizontal, 2 vertical. */
static Position SCANS[3][4][64];

static void make_scans(void) {
    for (int log2 = 0; log2 < 4; log2++) {
        int n = 1 << log2, i = 0, x = 0, y = 0;
        while (i < n * n) {
            while (y >= 0) {
                if (x < n && y < n) SCANS[0][log2][i].x = (int8_t)x, SCANS[0][log2][i++].y = (int8_t)y;
                y--, x++;
            }
            y = x, x = 0;
        }
        for (i = 0; i < n * n; i++) {
            SCANS[1][log2][i].x = (int8_t)(i % n), SCANS[1][log2][i].y = (int8_t)(i / n);
            SCANS[2][log2][i].x = (int8_t)(i / n), SCANS[2][log2][i].y = (int8_t)(i % n);
        }
    }
}

/* last_sig_coeff_{x,y}_prefix (9.3.4.2.3) of `position`; its suffix bits are coded later. */
static const uint8_t GROUP[32] = {0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7,
                                  8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9};

static void last_prefix(Coder *c, int base, int position, int log2) {
    int prefix = GROUP[position], most = 2 * log2 - 1;
    int offset = 3 * (log2 - 2) + ((log2 - 1) >> 2), shift = (log2 + 1) >> 2;
    for (int b = 0; b < prefix; b++) encode_bin(c, base + offset + (b >> shift), 1);
    if (prefix < most) encode_bin(c, base + offset + (prefix >> shift), 0);
}

static void last_suffix(Coder *c, int position) {
    int prefix = GROUP[position];
    if (prefix > 3) {
        int bits = (prefix >> 1) - 1;
        encode_bypass_bits(c, (uint32_t)(position - ((2 + (prefix & 1)) << bits)), bits);
    }
}

/* coeff_abs_level_remaining with Rice parameter k (9.3.3.11). */
static void remaining(Coder *c, int value, int k) {
    if (value < 4 << k) {
        for (int i = 0; i < value >> k; i++) encode_bypass(c, 1);
        encode_bypass(c, 0);
        encode_bypass_bits(c, (uint32_t)value & ((1u << k) - 1), k);
        return;
    }
    int prefix = 4;
    while (value >= ((1 << (prefix - 2)) + 2) << k) prefix++;
    for (int i = 0; i < prefix; i++) encode_bypass(c, 1);
    encode_bypass(c, 0);
    encode_bypass_bits(c, (uint32_t)(value - (((1 << (prefix - 3)) + 2) << k)), prefix - 3 + k);
}

/* sig_coeff_flag's context of luma coefficient (x, y) of a TB of 8 or more samples (9.3.4.2.5). */
static int significance_context(int x, int y, int log2, int scan, int neighbours) {
    if (x + y == 0) return 0;
    int xp = x & 3, yp = y & 3, context;
    switch (neighbours) {
    case 0: context = xp + yp >= 3 ? 0 : xp + yp > 0 ? 1 : 2; break;
    case 1: context = yp == 0 ? 2 : yp == 1 ? 1 : 0; break;
    case 2: context = xp == 0 ? 2 : xp == 1 ? 1 : 0; break;
    default: context = 2;
    }
    if ((x >> 2) + (y >> 2) > 0) context += 3;
    return context + (log2 == 3 ? (scan == 0 ? 9 : 15) : 21);
}

/* residual_coding (7.3.8.11) of a luma TB of 8-32 samples with cu_transquant_bypass: the residual itself. */
static void residual_coding(Coder *c, const int16_t *values, int stride, int log2, int scan) {
    int sub_log2 = log2 - 2, width = 1 << sub_log2;
    const Position *subs = SCANS[scan][sub_log2], *cells = SCANS[scan][2];
    int last_sub = -1, last_cell = -1;
    for (int i = width * width - 1; i >= 0 && last_sub < 0; i--)
        for (int k = 15; k >= 0; k--)
            if (values[(subs[i].y * 4 + cells[k].y) * stride + subs[i].x * 4 + cells[k].x]) {
                last_sub = i, last_cell = k;
                break;
            }
    int last_x = subs[last_sub].x * 4 + cells[last_cell].x, last_y = subs[last_sub].y * 4 + cells[last_cell].y;
    if (scan == 2) { int t = last_x; last_x = last_y, last_y = t; } /* the decoder swaps them back */
    last_prefix(c, LAST_X, last_x, log2);
    last_prefix(c, LAST_Y, last_y, log2);
    last_suffix(c, last_x);
    last_suffix(c, last_y);

    uint8_t neighbours[64] = {0}; /* per sub-block: 1 the one to its right is coded, 2 the one below */
    int greater1_state = 1;      /* c1 of the last sub-block with coefficients */
    for (int i = last_sub; i >= 0; i--) {
        int sx = subs[i].x, sy = subs[i].y, coded = 1, infer_dc = 0;
        int level[16], cell[16], count = 0;
        for (int k = 0; k < 16; k++) level[k] = values[(sy * 4 + cells[k].y) * stride + sx * 4 + cells[k].x];
        if (i < last_sub && i > 0) {
            coded = 0;
            for (int k = 0; k < 16; k++) coded |= level[k] != 0;
            encode_bin(c, CODED_SUB + ((neighbours[sy * width + sx] & 1) | (neighbours[sy * width + sx] >> 1)), coded);
            infer_dc = 1;
        }
        if (!coded) continue;
        if (sx > 0) neighbours[sy * width + sx - 1] |= 1;
        if (sy > 0) neighbours[(sy - 1) * width + sx] |= 2;
        int pattern = neighbours[sy * width + sx], first = i == last_sub ? last_cell - 1 : 15;
        if (i == last_sub) cell[count++] = last_cell;
        for (int k = first; k > 0; k--) {
            int x = sx * 4 + cells[k].x, y = sy * 4 + cells[k].y, significant = level[k] != 0;
            encode_bin(c, SIGNIFICANT + significance_context(x, y, log2, scan, pattern), significant);
            if (significant) cell[count++] = k, infer_dc = 0;
        }
        if (first >= 0) {
            if (!infer_dc) {
                encode_bin(c, SIGNIFICANT + significance_context(sx * 4, sy * 4, log2, scan, pattern), level[0] != 0);
                if (level[0]) cell[count++] = 0;
            } else {
                cell[count++] = 0; /* inferred: the sub-block is coded and nothing else in it is */
            }
        }
        if (!count) continue; /* sub-block 0 inferred coded, all zero: the contexts carry over */
        int set = (i == 0 ? 0 : 2) + (greater1_state == 0), g1 = 1, first_greater1 = -1;
        int base[16];
        for (int j = 0; j < count; j++) base[j] = 1;
        for (int j = 0; j < count && j < 8; j++) {
            int magnitude = abs(level[cell[j]]), flag = magnitude > 1;
            encode_bin(c, GREATER1 + set * 4 + (g1 > 3 ? 3 : g1), flag);
            if (g1 > 0) g1 = flag ? 0 : g1 + 1;
            if (flag) {
                base[j] = 2;
                if (first_greater1 < 0) first_greater1 = j;
            } else {
                base[j] = -1; /* level 1: nothing remains */
            }
        }
        greater1_state = g1;
        if (first_greater1 >= 0) {
            int flag = abs(level[cell[first_greater1]]) > 2;
            encode_bin(c, GREATER2 + set, flag);
            base[first_greater1] = flag ? 3 : -1;
        }
        for (int j = 0; j < count; j++) encode_bypass(c, level[cell[j]] < 0);
        int rice = 0;
        for (int j = 0; j < count; j++) {
            if (base[j] < 0) continue;
            int magnitude = abs(level[cell[j]]);
            remaining(c, magnitude - base[j], rice);
            if (magnitude > 3 * (1 << rice) && rice < 4) rice++;
        }
    }
}

static int intra_scan(int log2, int mode) {
    if (log2 != 3) return 0;
    return mode >= 6 && mode <= 14 ? 2 : mode >= 22 && mode <= 30 ? 1 : 0;
}

/* coding_unit (7.3.8.5) of an intra CU with cu_transquant_bypass. */
static void coding_unit(Coder *c, Picture *p, int x, int y, int log2) {
    int mode = block_value(p, p->mode, x, y);
    encode_bin(c, TRANSQUANT, 1);
    if (log2 == 3) encode_bin(c, PART_MODE, 1); /* PART_2Nx2N */
    /* the most probable modes (8.4.2): the left and above CUs' (above only within this CTB row) */
    int left = x > 0 ? block_value(p, p->mode, x - 1, y) : DC;
    int above = y > 0 && ((y - 1) >> CTB_LOG2) == (y >> CTB_LOG2) ? block_value(p, p->mode, x, y - 1) : DC;
    int candidates[3];
    if (left == above) {
        if (left < 2) candidates[0] = PLANAR, candidates[1] = DC, candidates[2] = VERTICAL;
        else candidates[0] = left, candidates[1] = 2 + (left + 29) % 32, candidates[2] = 2 + (left - 2 + 1) % 32;
    } else {
        candidates[0] = left, candidates[1] = above;
        candidates[2] = left != PLANAR && above != PLANAR ? PLANAR : left != DC && above != DC ? DC : VERTICAL;
    }
    int index = -1;
    for (int i = 0; i < 3; i++)
        if (candidates[i] == mode) index = i;
    encode_bin(c, PREV_INTRA, index >= 0);
    if (index >= 0) {
        encode_bypass(c, index > 0);
        if (index > 0) encode_bypass(c, index > 1);
    } else {
        int rest = mode;
        for (int i = 0; i < 3; i++) rest -= candidates[i] < mode;
        encode_bypass_bits(c, (uint32_t)rest, 5);
    }
    int nonzero = block_value(p, p->coded, x, y);
    encode_bin(c, CBF_LUMA + 1, nonzero); /* trafoDepth 0 */
    if (nonzero) residual_coding(c, p->residual + (y & (CTB - 1)) * CTB + (x & (CTB - 1)), CTB, log2, intra_scan(log2, mode));
}

/* coding_quadtree (7.3.8.4) of the block at (x, y), as choose() split it. */
static void coding_quadtree(Coder *c, Picture *p, int x, int y, int log2) {
    int n = 1 << log2, split;
    if (x + n <= p->width && y + n <= p->height && log2 > 3) {
        int depth = CTB_LOG2 - log2, context = 0;
        if (x > 0) context += CTB_LOG2 - block_value(p, p->cu_log2, x - 1, y) > depth;
        if (y > 0) context += CTB_LOG2 - block_value(p, p->cu_log2, x, y - 1) > depth;
        split = block_value(p, p->cu_log2, x, y) < log2;
        encode_bin(c, SPLIT_CU + context, split);
    } else {
        split = log2 > 3;
    }
    if (!split) {
        coding_unit(c, p, x, y, log2);
        return;
    }
    int half = n >> 1;
    for (int i = 0; i < 4; i++) {
        int cx = x + (i & 1) * half, cy = y + (i >> 1) * half;
        if (cx < p->width && cy < p->height) coding_quadtree(c, p, cx, cy, log2 - 1);
    }
}

/* encode(pixels, width, height) -> the slice data: the picture's CTUs, end_of_slice_segment_flag, trailing bits. */
static PyObject *encode(PyObject *self, PyObject *args) {
    PyObject *object;
    int width, height;
    if (!PyArg_ParseTuple(args, "Oii", &object, &width, &height)) return NULL;
    if (width <= 0 || height <= 0 || width % MIN_CB || height % MIN_CB) {
        PyErr_SetString(PyExc_ValueError, "the coded picture's sides must be positive multiples of 8");
        return NULL;
    }
    Py_buffer view;
    if (typed_buffer(object, &view, 1, "B", "uint8 sample", (Py_ssize_t)width * height, 0, "pixels") < 0) return NULL;
    Picture p = {.pixels = view.buf, .width = width, .height = height, .ctb_columns = (width + CTB - 1) / CTB,
                 .blocks_wide = width / MIN_CB};
    size_t blocks = (size_t)(width / MIN_CB) * (height / MIN_CB);
    p.cu_log2 = malloc(blocks), p.mode = malloc(blocks), p.coded = malloc(blocks);
    Coder *c = malloc(sizeof *c);
    PyObject *result = NULL;
    if (!p.cu_log2 || !p.mode || !p.coded || !c) {
        PyErr_NoMemory();
    } else {
        coder_init(c);
        Py_BEGIN_ALLOW_THREADS;
        int rows = (height + CTB - 1) / CTB;
        for (int row = 0; row < rows; row++)
            for (int column = 0; column < p.ctb_columns; column++) {
                choose(&p, column * CTB, row * CTB, CTB_LOG2);
                coding_quadtree(c, &p, column * CTB, row * CTB, CTB_LOG2);
                encode_terminate(c, row == rows - 1 && column == p.ctb_columns - 1);
            }
        finish(c);
        Py_END_ALLOW_THREADS;
        result = c->failed ? PyErr_NoMemory() : PyBytes_FromStringAndSize((const char *)c->data, (Py_ssize_t)c->size);
        free(c->data);
    }
    free(c), free(p.cu_log2), free(p.mode), free(p.coded);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS, "The slice data of the lossless HEVC intra picture of width x height uint8 samples."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hevc_lossless", NULL, -1, methods};

PyMODINIT_FUNC PyInit__hevc_lossless(void) {
    make_scans();
    return PyModule_Create(&module);
}
