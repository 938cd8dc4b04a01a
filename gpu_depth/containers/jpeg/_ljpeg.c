/* The lossless-JPEG codec of ljpeg.py in C.  Decoding: a scan's data unstuffed and split at its restart markers,
 * then each interval's codes followed and its prediction undone in one pass, refusing what the NumPy decoder
 * refuses (a window no code starts, a code or its extra bits past the data's end) at the same sample and bit.
 * Encoding: the prediction differences counted by category, then their codes packed, padded with ones and 0xFF
 * stuffed, byte for byte as the NumPy encoder packs them (ljpeg.py computes the differences and derives the
 * Huffman table from the counts).  Built where a C compiler is at hand (setup.py); ljpeg.py codes with NumPy
 * where it is not. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../_buffers.h"

_Static_assert((-3 >> 1) == -2, "predictors 5 and 6 need an arithmetic right shift");

/* The 64 bits from byte p on, big-endian (compilers make this one load and a byte swap). */
static inline uint64_t load64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static inline int32_t predicted(int predictor, int32_t a, int32_t b, int32_t c) {
    switch (predictor) {
    case 1: return a;
    case 2: return b;
    case 3: return c;
    case 4: return a + b - c;
    case 5: return a + ((b - c) >> 1);
    case 6: return b + ((a - c) >> 1);
    default: return (a + b) >> 1;
    }
}

/* Bits of the window the fast table is indexed by: its 16 KiB stay in the L1 cache. */
#define FAST_BITS 12
#define SLOW 0 /* a fast entry's total length 0: the code or its extra bits pass FAST_BITS */

/* The difference that `extra` bits of `value` code in their category (T.81 F.2.2.1). */
static inline int32_t extended(int32_t value, unsigned extra) {
    return value < (1 << (extra - 1)) ? value + 1 - (1 << extra) : value;
}

/* For each FAST_BITS-bit window: difference << 8 | the code's and extra bits' total length, where the whole
 * symbol lies within the window (else SLOW: the 16-bit lookup decides). */
static void fast_table(const uint16_t *lookup, int32_t *fast) {
    for (unsigned window = 0; window < 1u << FAST_BITS; window++) {
        unsigned entry = lookup[window << (16 - FAST_BITS)], length = entry & 0xFF, category = entry >> 8;
        unsigned extra = category == 16 ? 0 : category;
        fast[window] = SLOW;
        if (!length || length + extra > FAST_BITS) continue;
        int32_t difference = category == 16 ? 32768 : 0;
        if (extra) difference = extended((int32_t)(window >> (FAST_BITS - length - extra)) & ((1 << extra) - 1), extra);
        fast[window] = (int32_t)((uint32_t)difference << 8) | (int32_t)(length + extra);
    }
}

/* Decode `rows` lines of `width` samples into `out`; 0, or the failing sample's index + 1 with its bit
 * position and whether no code starts there (else its code runs past the end).  Inlined once per predictor,
 * so that each loop predicts without a branch. */
static inline __attribute__((always_inline)) Py_ssize_t
decode_predicted(const uint8_t *data, uint64_t bits, const uint16_t *lookup, const int32_t *fast, Py_ssize_t width,
                 Py_ssize_t rows, const int predictor, int32_t initial, uint16_t *out, uint64_t *at, int *no_code) {
    uint64_t pos = 0, window = 0; /* the bits from pos on (zeros past the end), `kept` of them loaded */
    uint64_t next = 0, size = bits >> 3; /* the byte loaded next: 4 a time, the loads off the codes' path */
    unsigned kept = 0;
    for (Py_ssize_t i = 0; i < rows; i++) {
        uint16_t *line = out + i * width;
        const uint16_t *above = i ? line - width : line;
        int32_t left = 0;
        for (Py_ssize_t j = 0; j < width; j++) {
            if (kept < 32) { /* 4 more bytes; those past the interval read as zeros (8 are readable there) */
                uint64_t word = next < size ? load64(data + next) >> 32 : 0;
                if (next + 4 > size && next < size) word &= ~0ULL << (8 * (next + 4 - size));
                window |= word << (32 - kept);
                next += 4;
                kept += 32;
            }
            int32_t entry = fast[window >> (64 - FAST_BITS)], difference = entry >> 8;
            unsigned total = entry & 0xFF;
            if (total == SLOW) {
                unsigned code = lookup[window >> 48], length = code & 0xFF, category = code >> 8;
                unsigned extra = category == 16 ? 0 : category;
                total = length ? length + extra : 0;
                difference = category == 16 ? 32768 : 0;
                if (length && extra) difference = extended((int32_t)((window << length) >> (64 - extra)), extra);
            }
            if (!total || pos + total > bits) {
                *at = pos;
                *no_code = !total;
                return i * width + j + 1;
            }
            pos += total;
            window <<= total;
            kept -= total;
            int32_t guess;
            if (i == 0)
                guess = j ? left : initial;
            else
                guess = j ? predicted(predictor, left, above[j], above[j - 1]) : above[0];
            left = (guess + difference) & 0xFFFF;
            line[j] = (uint16_t)left;
        }
    }
    return 0;
}

static Py_ssize_t decode(const uint8_t *data, uint64_t bits, const uint16_t *lookup, const int32_t *fast,
                         Py_ssize_t width, Py_ssize_t rows, int predictor, int32_t initial, uint16_t *out,
                         uint64_t *at, int *no_code) {
    switch (predictor) {
#define PREDICTOR(n)                                                                                             \
    case n: return decode_predicted(data, bits, lookup, fast, width, rows, n, initial, out, at, no_code);
        PREDICTOR(1) PREDICTOR(2) PREDICTOR(3) PREDICTOR(4) PREDICTOR(5) PREDICTOR(6)
    default: return decode_predicted(data, bits, lookup, fast, width, rows, 7, initial, out, at, no_code);
    }
}

/* `entropy` without its stuffed zero bytes (0xFF00 -> 0xFF) and restart markers (RST0-7), into `unstuffed`;
 * the start of each interval after the first into `starts` (as many as fit in `room`).  Every other byte is
 * data, a 0xFF fill byte included.  Returns the number of intervals. */
static Py_ssize_t unstuff(const uint8_t *entropy, Py_ssize_t size, uint8_t *unstuffed, Py_ssize_t *starts,
                          Py_ssize_t room, Py_ssize_t *length) {
    Py_ssize_t i = 0, j = 0, intervals = 1;
    while (i < size) {
        const uint8_t *mark = memchr(entropy + i, 0xFF, (size_t)(size - i));
        Py_ssize_t run = mark ? mark - (entropy + i) : size - i;
        memcpy(unstuffed + j, entropy + i, (size_t)run);
        i += run;
        j += run;
        if (i >= size) break;
        uint8_t next = i + 1 < size ? entropy[i + 1] : 1; /* a last 0xFF is data */
        if ((next & 0xF8) == 0xD0) {
            if (intervals <= room) starts[intervals - 1] = j;
            intervals++;
            i += 2;
            continue;
        }
        unstuffed[j++] = 0xFF;
        i += next == 0 ? 2 : 1;
    }
    *length = j;
    return intervals;
}

/* What decode_scan refuses, as ljpeg.py's errors number them. */
enum { INTERVAL_COUNT, TOO_FEW_BYTES, BROKEN_CODE };

static PyObject *refuse(Py_ssize_t expected, Py_ssize_t intervals, const Py_ssize_t *starts, Py_ssize_t length,
                        Py_ssize_t lines, Py_ssize_t width, Py_ssize_t height, Py_ssize_t *count) {
    if (intervals != expected) return Py_BuildValue("(inn)", INTERVAL_COUNT, intervals, expected);
    for (Py_ssize_t k = 0; k < intervals; k++) {
        Py_ssize_t first = k ? starts[k - 1] : 0, end = k + 1 < intervals ? starts[k] : length;
        count[k] = (lines < height - k * lines ? lines : height - k * lines) * width;
        if ((uint64_t)count[k] > 8 * (uint64_t)(end - first)) /* every code takes at least one bit */
            return Py_BuildValue("(inn)", TOO_FEW_BYTES, end - first, count[k]);
    }
    return NULL;
}

static PyObject *decode_scan(PyObject *self, PyObject *args) {
    Py_buffer entropy, lookup, out;
    Py_ssize_t width, height, lines;
    int predictor, initial;
    if (!PyArg_ParseTuple(args, "y*y*nnniiw*", &entropy, &lookup, &width, &height, &lines, &predictor, &initial,
                          &out))
        return NULL;
    PyObject *result = NULL;
    uint8_t *unstuffed = NULL;
    Py_ssize_t *starts = NULL, *count = NULL;
    if (lookup.len != 2 << 16 || width <= 0 || height <= 0 || lines <= 0 || out.len != 2 * width * height ||
        predictor < 1 || predictor > 7) {
        PyErr_SetString(PyExc_ValueError, "decode_scan: a 65536-entry uint16 lookup, a uint16 output of "
                                          "width x height samples, lines per interval > 0, predictor 1-7");
        goto done;
    }
    Py_ssize_t expected = (height + lines - 1) / lines, length = 0;
    unstuffed = calloc((size_t)entropy.len + 8, 1); /* readable 8 bytes past the end */
    starts = malloc(sizeof(Py_ssize_t) * (size_t)expected);
    count = malloc(sizeof(Py_ssize_t) * (size_t)expected);
    if (!unstuffed || !starts || !count) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t intervals, failed = 0, k, size = 0;
    uint64_t at = 0;
    int no_code = 0;
    int32_t fast[1 << FAST_BITS];
    Py_BEGIN_ALLOW_THREADS
    intervals = unstuff(entropy.buf, entropy.len, unstuffed, starts, expected - 1, &length);
    Py_END_ALLOW_THREADS
    if ((result = refuse(expected, intervals, starts, length, lines, width, height, count))) goto done;
    Py_BEGIN_ALLOW_THREADS
    fast_table(lookup.buf, fast);
    for (k = 0; k < intervals; k++) {
        Py_ssize_t first = k ? starts[k - 1] : 0;
        size = (k + 1 < intervals ? starts[k] : length) - first;
        failed = decode(unstuffed + first, 8 * (uint64_t)size, lookup.buf, fast, width, count[k] / width, predictor,
                        initial, (uint16_t *)out.buf + k * lines * width, &at, &no_code);
        if (failed) break;
    }
    Py_END_ALLOW_THREADS
    if (failed)
        result = Py_BuildValue("(innKKO)", BROKEN_CODE, failed - 1, count[k], (unsigned long long)at,
                               8 * (unsigned long long)size, no_code ? Py_True : Py_False);
    else
        result = Py_NewRef(Py_None);
done:
    free(unstuffed);
    free(starts);
    free(count);
    PyBuffer_Release(&entropy);
    PyBuffer_Release(&lookup);
    PyBuffer_Release(&out);
    return result;
}

/* `object`'s buffer of `count` native integers of `size` bytes (any number where `count` is -1). */
static int integers(PyObject *object, Py_buffer *view, Py_ssize_t size, Py_ssize_t count, int flags,
                    const char *what) {
    return typed_buffer(object, view, size, "bBhHiIlLqQ", "integers", count, flags, what);
}

/* Four counts of each category, one per lane of samples i % 4: counts of one category in a row (a smooth map's
 * category 0) add up in parallel instead of each waiting on the last. */
static void count_categories(const uint16_t *differences, Py_ssize_t size, const uint8_t *category_of,
                             int64_t (*lanes)[256]) {
    Py_ssize_t i = 0;
    for (; i + 4 <= size; i += 4)
        for (int lane = 0; lane < 4; lane++) lanes[lane][category_of[differences[i + lane]]]++;
    for (; i < size; i++) lanes[0][category_of[differences[i]]]++;
}

static PyObject *categories(PyObject *self, PyObject *args) {
    PyObject *objects[3], *result = NULL;
    Py_buffer views[3]; /* differences, category_of, out */
    if (!PyArg_ParseTuple(args, "OOO", &objects[0], &objects[1], &objects[2])) return NULL;
    const char *what[3] = {"categories: differences", "categories: category_of", "categories: out"};
    const Py_ssize_t sizes[3] = {2, 1, 8}, counts[3] = {-1, 1 << 16, -1};
    int got = 0;
    for (; got < 3; got++)
        if (integers(objects[got], &views[got], sizes[got], counts[got], got == 2 ? PyBUF_WRITABLE : 0, what[got]) < 0)
            goto done;
    int64_t lanes[4][256] = {{0}}, *out = views[2].buf;
    Py_BEGIN_ALLOW_THREADS
    count_categories(views[0].buf, views[0].len / 2, views[1].buf, lanes);
    Py_END_ALLOW_THREADS
    for (Py_ssize_t c = 0; c < 256; c++) {
        int64_t total = lanes[0][c] + lanes[1][c] + lanes[2][c] + lanes[3][c];
        if (c < views[2].len / 8) {
            out[c] = total;
        } else if (total) {
            PyErr_Format(PyExc_ValueError, "categories: category %zd is past the %zd of out", c, views[2].len / 8);
            goto done;
        }
    }
    result = Py_NewRef(Py_None);
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(&views[k]);
    return result;
}

/* The 64 bits of `v` at p, big-endian (compilers make this a byte swap and one store). */
static inline void store64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* The codes of `count` differences (`symbols[d]`, `lengths[d]` bits, at most 32) into `raw`, which has room for
 * `total` bits and 8 bytes more, the last byte padded with ones.  Each code's store writes the 8 bytes from the
 * first one not yet whole (no branch on whether a byte is complete).  Returns whether they took `total` bits. */
static int put_codes(const uint16_t *differences, Py_ssize_t count, const uint64_t *symbols, const uint64_t *lengths,
                     uint64_t total, uint8_t *raw) {
    uint64_t bits = 0, pos = 0; /* the codes so far: the low `kept` (< 8) bits of `bits` not yet a whole byte */
    unsigned kept = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned length = (unsigned)lengths[differences[i]];
        if (length > total - pos) return 0;
        pos += length;
        bits = bits << length | symbols[differences[i]];
        kept += length;
        store64(raw, bits << (63 - kept) << 1); /* kept may be 0 */
        raw += kept >> 3;
        kept &= 7;
    }
    if (kept) *raw = (uint8_t)(bits << (8 - kept) | 0xFF >> kept);
    return pos == total;
}

/* `size` bytes of `raw` into `out`, each 0xFF followed by a stuffed zero (T.81 F.1.2.3); the end. */
static uint8_t *stuff(const uint8_t *raw, uint64_t size, uint8_t *out) {
    const uint8_t *end = raw + size;
    while (raw < end) {
        const uint8_t *mark = memchr(raw, 0xFF, (size_t)(end - raw));
        size_t run = mark ? (size_t)(mark - raw) + 1 : (size_t)(end - raw);
        memcpy(out, raw, run);
        out += run;
        raw += run;
        if (mark) *out++ = 0;
    }
    return out;
}

static PyObject *pack(PyObject *self, PyObject *args) {
    PyObject *objects[3], *result = NULL;
    Py_buffer views[3] = {{0}}; /* differences, symbols, lengths */
    long long total;
    if (!PyArg_ParseTuple(args, "OOOL", &objects[0], &objects[1], &objects[2], &total)) return NULL;
    const char *what[3] = {"pack: differences", "pack: symbols", "pack: lengths"};
    int got = 0;
    for (; got < 3; got++)
        if (integers(objects[got], &views[got], got ? 8 : 2, got ? 1 << 16 : -1, PyBUF_SIMPLE, what[got]) < 0)
            goto done;
    const uint64_t *symbols = views[1].buf, *lengths = views[2].buf;
    Py_ssize_t count = views[0].len / 2;
    for (int k = 0; k < 1 << 16; k++)
        if (lengths[k] > 32 || symbols[k] >> lengths[k]) {
            PyErr_Format(PyExc_ValueError, "pack: the code of difference %d is not within its %llu bits", k,
                         (unsigned long long)lengths[k]);
            goto done;
        }
    if (total < 0 || (unsigned long long)total > 32 * (unsigned long long)count) {
        PyErr_Format(PyExc_ValueError, "pack: %lld bits cannot be the codes of %zd differences", total, count);
        goto done;
    }
    uint64_t bytes = ((uint64_t)total + 7) / 8;
    uint8_t *raw = malloc(bytes + 8), *start, *end = NULL;
    if (!raw || !(result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(2 * bytes)))) { /* every byte stuffed */
        free(raw);
        if (!result) PyErr_NoMemory();
        goto done;
    }
    start = (uint8_t *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    if (put_codes(views[0].buf, count, symbols, lengths, (uint64_t)total, raw)) end = stuff(raw, bytes, start);
    Py_END_ALLOW_THREADS
    free(raw);
    if (!end) {
        PyErr_Format(PyExc_ValueError, "pack: the codes of the differences do not take %lld bits", total);
        Py_CLEAR(result);
    } else {
        _PyBytes_Resize(&result, end - start);
    }
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(&views[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_scan", decode_scan, METH_VARARGS,
     "decode_scan(entropy, lookup, width, height, lines, predictor, initial, out) -> None | refusal\n\n"
     "Decode a scan's entropy-coded data (restart intervals of `lines` lines) into the uint16 buffer out\n"
     "(samples before the point transform); lookup maps each 16-bit window to its code's\n"
     "length | category << 8 (length 0: no code starts).  A refusal: (0, intervals, expected),\n"
     "(1, bytes, samples) of the first interval too short, or (2, sample, samples, bit, bits, no_code)."},
    {"categories", categories, METH_VARARGS,
     "categories(differences, category_of, out) -> None\n\n"
     "How many of the uint16 differences fall in each category (category_of: the uint8 category of each\n"
     "difference), into the int64 buffer out (one item a category)."},
    {"pack", pack, METH_VARARGS,
     "pack(differences, symbols, lengths, total) -> bytes\n\n"
     "The entropy-coded data of the uint16 differences: symbols[d] in lengths[d] bits (uint64 and int64 tables\n"
     "of 65536, codes of at most 32 bits) each, total bits in all, padded with 1-bits and 0xFF stuffed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ljpeg", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ljpeg(void) { return PyModule_Create(&module); }
