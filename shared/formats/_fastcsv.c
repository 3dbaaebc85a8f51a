/* The import's fast path: well-formed single-line CSV records to export lines, in C.
 *
 * ``convert`` reads records from the start of a buffer and appends, for each one it can vouch
 * for, exactly the bytes ``orjson.dumps(row_to_line(cells, columns)) + b"\n"`` would give.  It
 * stops, without consuming it, at the first record it cannot vouch for (anything unusual:
 * a blank line, a carriage return or NUL inside a line, a quote inside an unquoted field, a
 * quoted field not followed by a comma, a record spanning lines, invalid UTF-8, a wrong field
 * count, a cell that Python would strip, a timestamp that is not 1..10 plain digits in range,
 * an alias row, a row Python would reject), at a line without its newline, and before the row
 * that would fill the batch: the caller hands that record to the Python path, which stays the
 * one definition of the format and decides when a batch is committed.
 *
 * convert(data, offset, spec, body, max_records, events, max_events, max_body_bytes)
 *   spec = (width, identity, timestamp, event, alias, ((index, key_json), ...)), -1 for an
 *          absent column; key_json is b',"Name":' as orjson writes it.
 *   returns (end_offset, records, min_t, max_t)   (min_t/max_t -1 when no record)
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_COLUMNS 512
#define MAX_RECORD_BYTES (64 * 1024)
#define MAX_TIMESTAMP_S 4102444800LL

typedef struct {
    const unsigned char *start; /* the value, inside the quotes when quoted */
    Py_ssize_t len;
    int doubled; /* quoted with "" pairs inside: each pair is one quote */
} Cell;

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Out;

static int out_reserve(Out *o, Py_ssize_t more) {
    if (o->len + more <= o->cap) return 0;
    Py_ssize_t cap = o->cap ? o->cap : 65536;
    while (cap < o->len + more) cap *= 2;
    char *p = PyMem_Realloc(o->data, cap);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    o->data = p;
    o->cap = cap;
    return 0;
}

/* Strict UTF-8 as Python decodes it: no overlongs, no surrogates, nothing past U+10FFFF.
 * Also refuses NUL and CR, which the Python path handles (or rejects) itself. */
static int valid_line(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0 || c == '\r') return 0;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n) return 0;
            unsigned char c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && c1 < 0xA0) return 0;  /* overlong */
            if (c == 0xED && c1 >= 0xA0) return 0; /* surrogate */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n) return 0;
            unsigned char c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && c1 < 0x90) return 0; /* overlong */
            if (c == 0xF4 && c1 >= 0x90) return 0; /* past U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* Whether str.strip() would remove the character starting at s (of a valid UTF-8 string). */
static int strippable_at(const unsigned char *s) {
    unsigned char c = s[0];
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    /* U+0085 U+00A0 (C2), U+1680 (E1), U+2000.. (E2), U+3000 (E3): refuse these leads. */
    return c == 0xC2 || c == 0xE1 || c == 0xE2 || c == 0xE3;
}

/* A cell whose value Python's .strip() would change (edges only). */
static int needs_strip(const Cell *cell) {
    if (cell->len == 0) return 0;
    const unsigned char *s = cell->start;
    if (strippable_at(s)) return 1;
    Py_ssize_t i = cell->len - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    return strippable_at(s + i);
}

static const char HEX[] = "0123456789abcdef";

/* The cell's value as a JSON string, escaped as orjson escapes it. */
static int put_string(Out *o, const Cell *cell) {
    if (out_reserve(o, cell->len * 6 + 2) < 0) return -1;
    char *w = o->data + o->len;
    const unsigned char *s = cell->start;
    const unsigned char *end = s + cell->len;
    *w++ = '"';
    while (s < end) {
        unsigned char c = *s++;
        if (c == '"') {
            if (cell->doubled) s++; /* "" in a quoted cell is one quote */
            *w++ = '\\';
            *w++ = '"';
        } else if (c == '\\') {
            *w++ = '\\';
            *w++ = '\\';
        } else if (c < 0x20) {
            *w++ = '\\';
            switch (c) {
            case '\b': *w++ = 'b'; break;
            case '\t': *w++ = 't'; break;
            case '\n': *w++ = 'n'; break;
            case '\f': *w++ = 'f'; break;
            case '\r': *w++ = 'r'; break;
            default:
                *w++ = 'u'; *w++ = '0'; *w++ = '0';
                *w++ = HEX[c >> 4]; *w++ = HEX[c & 15];
            }
        } else {
            *w++ = (char)c;
        }
    }
    *w++ = '"';
    o->len = w - o->data;
    return 0;
}

static int put_bytes(Out *o, const char *s, Py_ssize_t n) {
    if (out_reserve(o, n) < 0) return -1;
    memcpy(o->data + o->len, s, n);
    o->len += n;
    return 0;
}

/* Split [s, end) (a line without its line end) into cells; -1 if the csv module, strict, would
 * not read it as exactly these cells or the line is not one this path vouches for. */
static Py_ssize_t split_cells(const unsigned char *s, const unsigned char *end, Cell *cells,
                              Py_ssize_t max_cells) {
    Py_ssize_t n = 0;
    for (;;) {
        if (n == max_cells) return -1;
        Cell *cell = &cells[n++];
        if (s < end && *s == '"') {
            const unsigned char *p = ++s;
            int doubled = 0;
            for (;;) {
                const unsigned char *q = memchr(p, '"', end - p);
                if (q == NULL) return -1; /* the record goes on past this line */
                if (q + 1 < end && q[1] == '"') {
                    doubled = 1;
                    p = q + 2;
                    continue;
                }
                cell->start = s;
                cell->len = q - s;
                cell->doubled = doubled;
                s = q + 1;
                break;
            }
            if (s == end) return n;
            if (*s != ',') return -1;
            s++;
        } else {
            const unsigned char *p = s;
            while (p < end && *p != ',') {
                if (*p == '"') return -1;
                p++;
            }
            cell->start = s;
            cell->len = p - s;
            cell->doubled = 0;
            if (p == end) return n;
            s = p + 1;
        }
    }
}

static PyObject *convert(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data;
    Py_ssize_t offset, max_records, events, max_events, max_body_bytes;
    PyObject *spec, *body;
    if (!PyArg_ParseTuple(args, "y*nO!O!nnnn", &data, &offset, &PyTuple_Type, &spec,
                          &PyByteArray_Type, &body, &max_records, &events, &max_events,
                          &max_body_bytes))
        return NULL;
    PyObject *result = NULL;
    Cell *cells = NULL;
    Out out = {NULL, 0, 0};
    Py_ssize_t width, col_id, col_t, col_ev, col_alias;
    PyObject *props;
    if (!PyArg_ParseTuple(spec, "nnnnnO!", &width, &col_id, &col_t, &col_ev, &col_alias,
                          &PyTuple_Type, &props))
        goto done;
    Py_ssize_t nprops = PyTuple_GET_SIZE(props);
    Py_ssize_t prop_index[MAX_COLUMNS];
    const char *prop_key[MAX_COLUMNS];
    Py_ssize_t prop_key_len[MAX_COLUMNS];
    if (width < 1 || width > MAX_COLUMNS || nprops > MAX_COLUMNS || col_t < 0 ||
        col_id < 0 || col_id >= width || col_t >= width || col_ev >= width || col_alias >= width
        || offset < 0 || offset > data.len) {
        PyErr_SetString(PyExc_ValueError, "convert: unusable spec");
        goto done;
    }
    for (Py_ssize_t k = 0; k < nprops; k++) {
        PyObject *item = PyTuple_GET_ITEM(props, k);
        PyObject *key;
        if (!PyArg_ParseTuple(item, "nS", &prop_index[k], &key)) goto done;
        if (prop_index[k] < 0 || prop_index[k] >= width) {
            PyErr_SetString(PyExc_ValueError, "convert: property column out of range");
            goto done;
        }
        prop_key[k] = PyBytes_AS_STRING(key);
        prop_key_len[k] = PyBytes_GET_SIZE(key);
    }
    cells = PyMem_Malloc(sizeof(Cell) * (width + 1));
    if (cells == NULL) { PyErr_NoMemory(); goto done; }

    const unsigned char *base = data.buf;
    const unsigned char *p = base + offset;
    const unsigned char *limit = base + data.len;
    Py_ssize_t records = 0;
    Py_ssize_t body_len = PyByteArray_GET_SIZE(body);
    long long min_t = -1, max_t = -1;
    while (records < max_records) {
        const unsigned char *nl = memchr(p, '\n', limit - p);
        if (nl == NULL || nl - p + 1 > MAX_RECORD_BYTES) break;
        const unsigned char *end = nl;
        if (end > p && end[-1] == '\r') end--;
        if (end == p || !valid_line(p, end - p)) break;
        if (split_cells(p, end, cells, width + 1) != width) break;
        const Cell *identity = &cells[col_id];
        const Cell *stamp = &cells[col_t];
        if (identity->len == 0 || needs_strip(identity)) break;
        if (col_alias >= 0 && cells[col_alias].len != 0) break;
        const Cell *event = col_ev >= 0 ? &cells[col_ev] : NULL;
        if (event != NULL && needs_strip(event)) break;
        if (stamp->len < 1 || stamp->len > 10 || stamp->start[0] == '0') break;
        long long t = 0;
        int digits = 1;
        for (Py_ssize_t i = 0; i < stamp->len; i++) {
            unsigned char c = stamp->start[i];
            if (c < '0' || c > '9') { digits = 0; break; }
            t = t * 10 + (c - '0');
        }
        if (!digits || t > MAX_TIMESTAMP_S) break;
        int has_event = event != NULL && event->len > 0;
        int any_prop = 0;
        for (Py_ssize_t k = 0; k < nprops; k++)
            if (cells[prop_index[k]].len) { any_prop = 1; break; }
        if (!has_event && !any_prop) break; /* rejected as empty: the Python path reports it */

        Py_ssize_t mark = out.len;
        char digits_buf[24];
        int nd = snprintf(digits_buf, sizeof digits_buf, "%lld", t);
        if (put_bytes(&out, "{\"_p\":", 6) < 0 || put_string(&out, identity) < 0 ||
            put_bytes(&out, ",\"_t\":", 6) < 0 || put_bytes(&out, digits_buf, nd) < 0)
            goto done;
        if (has_event && (put_bytes(&out, ",\"_n\":", 6) < 0 || put_string(&out, event) < 0))
            goto done;
        for (Py_ssize_t k = 0; k < nprops; k++) {
            const Cell *value = &cells[prop_index[k]];
            if (!value->len) continue;
            if (put_bytes(&out, prop_key[k], prop_key_len[k]) < 0 || put_string(&out, value) < 0)
                goto done;
        }
        if (put_bytes(&out, "}\n", 2) < 0) goto done;
        if (events + 1 >= max_events || body_len + out.len >= max_body_bytes) {
            out.len = mark; /* this row fills the batch: the Python path takes it */
            break;
        }
        if (min_t < 0 || t < min_t) min_t = t;
        if (t > max_t) max_t = t;
        records++;
        events++;
        p = nl + 1;
    }
    if (out.len) {
        if (PyByteArray_Resize(body, body_len + out.len) < 0) goto done;
        memcpy(PyByteArray_AS_STRING(body) + body_len, out.data, out.len);
    }
    result = Py_BuildValue("nnLL", (Py_ssize_t)(p - base), records, min_t, max_t);
done:
    PyMem_Free(out.data);
    PyMem_Free(cells);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"convert", convert, METH_VARARGS,
     "convert(data, offset, spec, body, max_records, events, max_events, max_body_bytes)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "shared.formats._fastcsv",
    "The import's fast path for well-formed CSV records (see shared/imports/fastrows.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastcsv(void) { return PyModule_Create(&module); }
