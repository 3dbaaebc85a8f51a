/* Seek points in a gzip stream, found as zlib's own zran example finds them.
 *
 * A ``Scanner`` inflates a gzip member beside the reader that imports it (fed the same stored
 * bytes as they are read) and remembers the last 32 seek points it passed, at least 256 KiB of
 * output apart: deflate block boundaries that fall on a whole byte, each with the 32 KiB of
 * output before it (the window a raw inflater needs to go on from there), the CRC-32 of the
 * output so far and both offsets.  From such a point ``zlib.decompressobj(-15, zdict=window)``
 * resumes the member without reading what came before.  Only boundaries on a whole byte are
 * kept, so the resumption needs nothing zlib's Python module lacks (``inflatePrime``).  Memory
 * is fixed: the points (1 MiB) and zlib's state; no stored byte is held.
 *
 * Scanner(start_in, start_out, crc, window)   window None: the stream starts with the gzip
 *                                             header (start_in 0); else a raw deflate stream
 *                                             resumed at a seek point
 *   .feed(data)          inflate the next stored bytes
 *   .point(out)          (in, out, crc, window) of the newest point at or before ``out``
 *   .stopped, .out       whether it stopped (bad data, end of member); output so far
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <zlib.h>

#define WINDOW 32768

#define POINTS 32
#define SPACING (256 * 1024)
#define MAX_HEADER (1024 * 1024)

typedef struct {
    unsigned long long in, out;
    uLong crc;
    Py_ssize_t window_len;
    unsigned char window[WINDOW];
} Point;

typedef struct {
    PyObject_HEAD
    z_stream strm;
    int ready;    /* inflateInit2 done */
    int header;   /* the gzip header is still to be parsed */
    int stopped;  /* end of member, bad data, or an error: no more points */
    unsigned char *head; /* the header's bytes while it is incomplete */
    Py_ssize_t head_len;
    unsigned long long in; /* stored offset of the next byte fed */
    unsigned long long out;
    uLong crc;
    unsigned char ring[WINDOW]; /* the last 32 KiB of output */
    Py_ssize_t rpos;            /* next write position in ring */
    Point *points;              /* POINTS of them, newest at (next - 1) */
    int next, count;
} Scanner;

static void scanner_dealloc(Scanner *self) {
    if (self->ready) inflateEnd(&self->strm);
    PyMem_Free(self->head);
    PyMem_Free(self->points);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    unsigned long long start_in, start_out;
    unsigned long crc;
    PyObject *window;
    static char *kwlist[] = {"start_in", "start_out", "crc", "window", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "KKkO", kwlist, &start_in, &start_out, &crc,
                                     &window))
        return -1;
    if (self->ready) { inflateEnd(&self->strm); self->ready = 0; }
    memset(&self->strm, 0, sizeof self->strm);
    if (inflateInit2(&self->strm, -15) != Z_OK) {
        PyErr_SetString(PyExc_MemoryError, "inflateInit2 failed");
        return -1;
    }
    self->ready = 1;
    if (self->points == NULL) {
        self->points = PyMem_Malloc(sizeof(Point) * POINTS);
        if (self->points == NULL) { PyErr_NoMemory(); return -1; }
    }
    self->next = self->count = 0;
    self->in = start_in;
    self->out = start_out;
    self->crc = crc;
    self->rpos = 0;
    self->stopped = 0;
    self->head_len = 0;
    if (window == Py_None) {
        self->header = 1;
    } else {
        Py_buffer w;
        if (PyObject_GetBuffer(window, &w, PyBUF_SIMPLE) < 0) return -1;
        if (w.len > WINDOW) {
            PyBuffer_Release(&w);
            PyErr_SetString(PyExc_ValueError, "window over 32 KiB");
            return -1;
        }
        self->header = 0;
        if (w.len && inflateSetDictionary(&self->strm, w.buf, (uInt)w.len) != Z_OK)
            self->stopped = 1;
        /* The window is also the output before this point, for later points' windows: it
         * ends where the ring's next write goes (position 0). */
        memcpy(self->ring + (WINDOW - w.len), w.buf, w.len);
        PyBuffer_Release(&w);
    }
    return 0;
}

/* The length of the gzip header at the start of h[0..n); 0 if incomplete, -1 if not gzip. */
static Py_ssize_t header_length(const unsigned char *h, Py_ssize_t n) {
    Py_ssize_t i = 10;
    if (n < 10) return 0;
    if (h[0] != 0x1f || h[1] != 0x8b || h[2] != 8) return -1;
    int flags = h[3];
    if (flags & 4) {
        if (n < i + 2) return 0;
        i += 2 + (h[i] | (h[i + 1] << 8));
    }
    for (int bit = 8; bit <= 16; bit <<= 1) {
        if (flags & bit) {
            const unsigned char *z = i < n ? memchr(h + i, 0, n - i) : NULL;
            if (z == NULL) return 0;
            i = (z - h) + 1;
        }
    }
    if (flags & 2) i += 2;
    return i > n ? 0 : i;
}

static void remember(Scanner *self) {
    Point *p = &self->points[self->next];
    Py_ssize_t have = self->out < WINDOW ? (Py_ssize_t)self->out : WINDOW;
    /* the last ``have`` bytes of output, oldest first */
    Py_ssize_t start = (self->rpos - have + WINDOW) % WINDOW;
    Py_ssize_t first = WINDOW - start < have ? WINDOW - start : have;
    memcpy(p->window, self->ring + start, first);
    memcpy(p->window + first, self->ring, have - first);
    p->window_len = have;
    p->in = self->in;
    p->out = self->out;
    p->crc = self->crc;
    self->next = (self->next + 1) % POINTS;
    if (self->count < POINTS) self->count++;
}

/* Inflate data[0..n) (the stored bytes from self->in on), remembering points. */
static void inflate_fed(Scanner *self, const unsigned char *data, Py_ssize_t n) {
    while (!self->stopped && n > 0) {
        uInt chunk = n > (1 << 30) ? (1u << 30) : (uInt)n;
        self->strm.next_in = (unsigned char *)data;
        self->strm.avail_in = chunk;
        self->strm.next_out = self->ring + self->rpos;
        self->strm.avail_out = (uInt)(WINDOW - self->rpos);
        unsigned char *dest = self->ring + self->rpos;
        Py_ssize_t room = WINDOW - self->rpos;
        int ret = inflate(&self->strm, Z_BLOCK);
        Py_ssize_t used = chunk - self->strm.avail_in;
        Py_ssize_t made = room - self->strm.avail_out;
        data += used;
        n -= used;
        self->in += used;
        if (made) {
            self->crc = crc32(self->crc, dest, (uInt)made);
            self->out += made;
            self->rpos = (self->rpos + made) % WINDOW;
        }
        if (ret == Z_STREAM_END || (ret != Z_OK && ret != Z_BUF_ERROR)) {
            self->stopped = 1;
            break;
        }
        if (ret == Z_BUF_ERROR && !used && !made) break;
        int boundary = (self->strm.data_type & 128) && !(self->strm.data_type & 64);
        if (boundary && (self->strm.data_type & 7) == 0 && self->out > 0) {
            Point *last = self->count ? &self->points[(self->next + POINTS - 1) % POINTS] : NULL;
            if (last == NULL || self->out - last->out >= SPACING) remember(self);
        }
    }
}

static PyObject *scanner_feed(Scanner *self, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *data = b.buf;
    Py_ssize_t n = b.len;
    if (self->header && !self->stopped && n) {
        /* Gather the header (whole in the first read nearly always), then inflate after it. */
        unsigned char *h = PyMem_Realloc(self->head, self->head_len + n);
        if (h == NULL) { PyBuffer_Release(&b); return PyErr_NoMemory(); }
        self->head = h;
        memcpy(h + self->head_len, data, n);
        self->head_len += n;
        Py_ssize_t len = header_length(h, self->head_len);
        if (len < 0 || (len == 0 && self->head_len > MAX_HEADER)) {
            self->stopped = 1;
        } else if (len > 0) {
            self->header = 0;
            self->in = len;
            inflate_fed(self, h + len, self->head_len - len);
        }
        if (!self->header || self->stopped) {
            PyMem_Free(self->head);
            self->head = NULL;
            self->head_len = 0;
        }
    } else {
        inflate_fed(self, data, n);
    }
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

static PyObject *scanner_point(Scanner *self, PyObject *arg) {
    unsigned long long at = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    for (int k = 1; k <= self->count; k++) {
        Point *p = &self->points[(self->next + POINTS - k) % POINTS];
        if (p->out <= at)
            return Py_BuildValue("KKky#", p->in, p->out, (unsigned long)p->crc,
                                 (const char *)p->window, p->window_len);
    }
    Py_RETURN_NONE;
}

static PyObject *scanner_stopped(Scanner *self, void *Py_UNUSED(closure)) {
    return PyBool_FromLong(self->stopped);
}

static PyObject *scanner_out(Scanner *self, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLongLong(self->out);
}

static PyMethodDef scanner_methods[] = {
    {"feed", (PyCFunction)scanner_feed, METH_O, "Inflate the next stored bytes."},
    {"point", (PyCFunction)scanner_point, METH_O,
     "The newest remembered point at or before a decompressed offset, or None."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef scanner_getset[] = {
    {"stopped", (getter)scanner_stopped, NULL, "no more points will come", NULL},
    {"out", (getter)scanner_out, NULL, "decompressed bytes so far", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shared.formats._gzseek.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_dealloc = (destructor)scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Finds seek points in a gzip member (see the module).",
    .tp_methods = scanner_methods,
    .tp_getset = scanner_getset,
    .tp_init = (initproc)scanner_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "shared.formats._gzseek",
    "Seek points in gzip streams (see shared/formats/gzseek.py).", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__gzseek(void) {
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
