/* The area integral of resample.py's _integrate in C: for each of `size` equal spans of one axis of a float64
 * map, the sum of its pixels times the length of each inside the span, taps in ascending order, each product
 * rounded and then added (built with -ffp-contract=off: no fused multiply-add), so the sums are NumPy's to the
 * bit.  One pass over the map instead of NumPy's gather, weight and add a tap.  Built where a C compiler is at
 * hand (setup.py); resample.py integrates with NumPy where it is not. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>

#include "../_buffers.h"

/* For each span i of `size` over `length` pixels, its `taps` pixels (clamped to the map) and their lengths inside
 * it, as resample.py computes them: edges i * (length / size), the first pixel floor(edge i). */
static void spans(Py_ssize_t length, Py_ssize_t size, Py_ssize_t taps, Py_ssize_t *pixel, double *covered) {
    const double step = (double)length / (double)size;
    for (Py_ssize_t i = 0; i < size; i++) {
        const double low = (double)i * step, high = (double)(i + 1) * step;
        const Py_ssize_t first = (Py_ssize_t)floor(low);
        for (Py_ssize_t tap = 0; tap < taps; tap++) {
            const Py_ssize_t p = first + tap;
            const double inside = fmin(high, (double)(p + 1)) - fmax(low, (double)p);
            covered[i * taps + tap] = p >= length || !(inside > 0.0) ? 0.0 : inside;
            pixel[i * taps + tap] = p < length ? p : length - 1;
        }
    }
}

/* Spans of the rows (axis 0): each output row the weighted sum of `taps` input rows of `width` values. */
static void rows(const double *in, Py_ssize_t width, Py_ssize_t size, Py_ssize_t taps, const Py_ssize_t *pixel,
                 const double *covered, double *out) {
    for (Py_ssize_t i = 0; i < size; i++) {
        double *target = out + i * width;
        for (Py_ssize_t x = 0; x < width; x++) target[x] = 0.0;
        for (Py_ssize_t tap = 0; tap < taps; tap++) {
            const double weight = covered[i * taps + tap];
            const double *source = in + pixel[i * taps + tap] * width;
            for (Py_ssize_t x = 0; x < width; x++) target[x] += weight * source[x];
        }
    }
}

/* Spans of the columns (axis 1): each output value of a row the weighted sum of `taps` values of that row. */
static void columns(const double *in, Py_ssize_t height, Py_ssize_t length, Py_ssize_t size, Py_ssize_t taps,
                    const Py_ssize_t *pixel, const double *covered, double *out) {
    for (Py_ssize_t y = 0; y < height; y++) {
        const double *source = in + y * length;
        double *target = out + y * size;
        for (Py_ssize_t j = 0; j < size; j++) {
            double total = 0.0;
            for (Py_ssize_t tap = 0; tap < taps; tap++) total += covered[j * taps + tap] * source[pixel[j * taps + tap]];
            target[j] = total;
        }
    }
}

static PyObject *integrate(PyObject *self, PyObject *args) {
    PyObject *in_object, *out_object, *result = NULL;
    Py_ssize_t height, width, size;
    int axis;
    if (!PyArg_ParseTuple(args, "OnniOn", &in_object, &height, &width, &axis, &out_object, &size)) return NULL;
    if (height < 1 || width < 1 || size < 1 || (axis != 0 && axis != 1)) {
        PyErr_SetString(PyExc_ValueError, "integrate: a map of at least 1x1, axis 0 or 1 and at least one span");
        return NULL;
    }
    const Py_ssize_t length = axis ? width : height, other = axis ? height : width;
    if (length > PY_SSIZE_T_MAX / 8 / other || size > PY_SSIZE_T_MAX / 8 / other) {
        PyErr_SetString(PyExc_OverflowError, "integrate: the map is too large");
        return NULL;
    }
    const Py_ssize_t taps = (length + size - 1) / size + 1;
    Py_buffer in, out;
    if (typed_buffer(in_object, &in, 8, "d", "floats", height * width, PyBUF_SIMPLE, "integrate: values") < 0)
        return NULL;
    if (typed_buffer(out_object, &out, 8, "d", "floats", other * size, PyBUF_WRITABLE, "integrate: out") < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    Py_ssize_t *pixel = PyMem_Malloc(size * taps * sizeof(Py_ssize_t));
    double *covered = PyMem_Malloc(size * taps * sizeof(double));
    if (!pixel || !covered) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    spans(length, size, taps, pixel, covered);
    if (axis == 0) rows(in.buf, width, size, taps, pixel, covered, out.buf);
    else columns(in.buf, height, width, size, taps, pixel, covered, out.buf);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(pixel);
    PyMem_Free(covered);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"integrate", integrate, METH_VARARGS,
     "integrate(values, height, width, axis, out, size) -> None\n\n"
     "The area integral over `size` equal spans of `axis` (0: rows, 1: columns) of the C-contiguous float64\n"
     "height x width map values, into the float64 buffer out (size x width, or height x size)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_resample", NULL, -1, methods};

PyMODINIT_FUNC PyInit__resample(void) { return PyModule_Create(&module); }
