/* Seek points in a gzip stream, found as zlib's own zran example finds them.
 *
 * A ``Scanner`` inflates a gzip member beside the reader that imports it (fed the same stored
 * bytes) and remembers one seek point: the last deflate block boundary that falls on a whole
 * byte, at or before the decompressed offset it was last advanced to, with the 32 KiB of output
 * before it (the window a raw inflater needs to go on from there), the CRC-32 of the output so
 * far and both offsets.  From such a point ``zlib.decompressobj(-15, zdict=window)`` resumes the
 * member without reading what came before.  Only boundaries on a whole byte are kept, so the
 * resumption needs nothing zlib's Python module lacks (``inflatePrime``).
 *
 * Scanner(start_in, start_out, crc, window)   window None: the stream starts with the gzip
 *                                             header (start_in 0); else a raw deflate stream
 *                                             resumed at a seek point
 *   .feed(data)          queue stored bytes (the caller bounds how many wait: .pending)
 *   .advance(out)        inflate what is queued, up to decompressed offset ``out``
 *   .point()             (in, out, crc, window) of the remembered point, or None
 *   .pending, .failed    bytes queued; whether the scanner stopped (bad data, end of member)
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <zlib.h>

#define WINDOW 32768

typedef struct {
    PyObject_HEAD
    z_stream strm;
    int ready;     /* inflateInit2 done */
    int header;    /* the gzip header is still to be parsed */
    int stopped;   /* end of member, bad data, or an error: no more points */
    unsigned char *queue;
    Py_ssize_t qlen, qpos, qcap;
    unsigned long long in; /* stored offset of queue[qpos] */
    unsigned long long out;
    uLong crc;
    unsigned char ring[WINDOW];
    Py_ssize_t rpos;  /* next write position in ring */
    int has_point;
    unsigned long long p_in, p_out;
    uLong p_crc;
    unsigned char p_window[WINDOW];
    Py_ssize_t p_window_len;
} Scanner;

static void scanner_dealloc(Scanner *self) {
    if (self->ready) inflateEnd(&self->strm);
    PyMem_Free(self->queue);
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
    self->in = start_in;
    self->out = start_out;
    self->crc = crc;
    self->rpos = 0;
    self->has_point = 0;
    self->stopped = 0;
    self->qlen = self->qpos = 0;
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
        /* The window is also the output before this point, for the next point's window. */
        memcpy(self->ring + (WINDOW - w.len), w.buf, w.len);
        self->rpos = 0; /* ring is full from here on: its oldest bytes are at rpos */
        PyBuffer_Release(&w);
    }
    return 0;
}

static PyObject *scanner_feed(Scanner *self, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    if (!self->stopped && b.len) {
        if (self->qpos && self->qpos * 2 >= self->qlen) { /* drop what was consumed */
            memmove(self->queue, self->queue + self->qpos, self->qlen - self->qpos);
            self->qlen -= self->qpos;
            self->qpos = 0;
        }
        if (self->qlen + b.len > self->qcap) {
            Py_ssize_t cap = self->qcap ? self->qcap : 65536;
            while (cap < self->qlen + b.len) cap *= 2;
            unsigned char *q = PyMem_Realloc(self->queue, cap);
            if (q == NULL) { PyBuffer_Release(&b); return PyErr_NoMemory(); }
            self->queue = q;
            self->qcap = cap;
        }
        memcpy(self->queue + self->qlen, b.buf, b.len);
        self->qlen += b.len;
    }
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

/* Parse the gzip header at the queue's start; 1 done, 0 need more bytes, -1 not gzip. */
static int parse_header(Scanner *self) {
    const unsigned char *h = self->queue + self->qpos;
    Py_ssize_t n = self->qlen - self->qpos, i = 10;
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
    if (i > n) return 0;
    self->qpos += i;
    self->in += i;
    return 1;
}

static void remember(Scanner *self) {
    Py_ssize_t have = self->out < WINDOW ? (Py_ssize_t)self->out : WINDOW;
    /* the last ``have`` bytes of output, oldest first */
    Py_ssize_t start = (self->rpos - have + WINDOW) % WINDOW;
    Py_ssize_t first = WINDOW - start < have ? WINDOW - start : have;
    memcpy(self->p_window, self->ring + start, first);
    memcpy(self->p_window + first, self->ring, have - first);
    self->p_window_len = have;
    self->p_in = self->in;
    self->p_out = self->out;
    self->p_crc = self->crc;
    self->has_point = 1;
}

static PyObject *scanner_advance(Scanner *self, PyObject *arg) {
    unsigned long long target = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    if (self->header && !self->stopped) {
        int h = parse_header(self);
        if (h < 0) self->stopped = 1;
        if (h <= 0) Py_RETURN_NONE;
        self->header = 0;
    }
    while (!self->stopped && self->out < target && self->qpos < self->qlen) {
        Py_ssize_t room = WINDOW - self->rpos;
        if ((unsigned long long)room > target - self->out) room = (Py_ssize_t)(target - self->out);
        unsigned char *dest = self->ring + self->rpos;
        self->strm.next_in = self->queue + self->qpos;
        self->strm.avail_in = (uInt)(self->qlen - self->qpos);
        self->strm.next_out = dest;
        self->strm.avail_out = (uInt)room;
        int ret = inflate(&self->strm, Z_BLOCK);
        Py_ssize_t used = (self->qlen - self->qpos) - self->strm.avail_in;
        Py_ssize_t made = room - self->strm.avail_out;
        self->qpos += used;
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
        if (boundary && (self->strm.data_type & 7) == 0 && self->out <= target) remember(self);
    }
    Py_RETURN_NONE;
}

static PyObject *scanner_point(Scanner *self, PyObject *Py_UNUSED(ignored)) {
    if (!self->has_point) Py_RETURN_NONE;
    return Py_BuildValue("KKky#", self->p_in, self->p_out, (unsigned long)self->p_crc,
                         (const char *)self->p_window, self->p_window_len);
}

static PyObject *scanner_pending(Scanner *self, void *Py_UNUSED(closure)) {
    return PyLong_FromSsize_t(self->qlen - self->qpos);
}

static PyObject *scanner_failed(Scanner *self, void *Py_UNUSED(closure)) {
    return PyBool_FromLong(self->stopped);
}

static PyMethodDef scanner_methods[] = {
    {"feed", (PyCFunction)scanner_feed, METH_O, "Queue stored bytes."},
    {"advance", (PyCFunction)scanner_advance, METH_O, "Inflate up to a decompressed offset."},
    {"point", (PyCFunction)scanner_point, METH_NOARGS, "The remembered seek point or None."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef scanner_getset[] = {
    {"pending", (getter)scanner_pending, NULL, "stored bytes queued", NULL},
    {"stopped", (getter)scanner_failed, NULL, "no more points will come", NULL},
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
