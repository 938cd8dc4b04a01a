/* The buffer check of our C extensions (_ljpeg.c, _resample.c): what they are handed is never trusted. */
#ifndef GPU_DEPTH_BUFFERS_H
#define GPU_DEPTH_BUFFERS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* `object`'s C-contiguous buffer of `count` items (any number where `count` is -1) of `size` bytes, in one of the
 * struct formats `formats` (native order), writable if `flags` says so; else -1 with a TypeError (another format
 * or size: `kind` names what was expected) or a ValueError (not contiguous, or not `count` items). */
static int typed_buffer(PyObject *object, Py_buffer *view, Py_ssize_t size, const char *formats, const char *kind,
                        Py_ssize_t count, int flags, const char *what) {
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | flags) < 0) return -1;
    const char *format = view->format ? view->format : "B";
    if (*format == '@' || *format == '=' || *format == '<') format++; /* native order (x86 and ARM: little) */
    if (view->itemsize != size || strlen(format) != 1 || !strchr(formats, *format)) {
        PyErr_Format(PyExc_TypeError, "%s: %zd-byte %s expected, not format '%s'", what, size, kind, view->format);
    } else if (count >= 0 && view->len != size * count) {
        PyErr_Format(PyExc_ValueError, "%s: %zd items expected, not %zd", what, count, view->len / size);
    } else {
        return 0;
    }
    PyBuffer_Release(view);
    return -1;
}

#endif
