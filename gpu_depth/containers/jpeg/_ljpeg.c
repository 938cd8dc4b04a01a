/* The lossless-JPEG decoder of ljpeg.py in C: a scan's data unstuffed and split at its restart markers, then
 * each interval's codes followed and its prediction undone in one pass, refusing what the NumPy decoder refuses (a window no code starts, a code or its extra
 * bits past the data's end) at the same sample and bit.  Built where a C compiler is at hand (setup.py);
 * ljpeg.py decodes with NumPy where it is not. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

static PyMethodDef methods[] = {
    {"decode_scan", decode_scan, METH_VARARGS,
     "decode_scan(entropy, lookup, width, height, lines, predictor, initial, out) -> None | refusal\n\n"
     "Decode a scan's entropy-coded data (restart intervals of `lines` lines) into the uint16 buffer out\n"
     "(samples before the point transform); lookup maps each 16-bit window to its code's\n"
     "length | category << 8 (length 0: no code starts).  A refusal: (0, intervals, expected),\n"
     "(1, bytes, samples) of the first interval too short, or (2, sample, samples, bit, bits, no_code)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ljpeg", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ljpeg(void) { return PyModule_Create(&module); }
