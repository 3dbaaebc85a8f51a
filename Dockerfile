# One image for every role of the fleet: `bucketbridge worker`, `bucketbridge scheduler` and the
# operator CLI (`bucketbridge sites …`, `enqueue …`, `status …`).
#
# BASE_IMAGE is any Debian-based image with Python >= 3.11 and the venv module, e.g. the
# default python:3.11-slim-bookworm, or the Debian bookworm base that scripts/build-image makes
# with debootstrap where no registry image can be pulled.  Both stages use the same base, so the
# virtual environment's interpreter link (python3 on PATH: /usr/local/bin in python:*-slim,
# /usr/bin in Debian) is valid in the final stage.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- builder: build the wheel, install it with its dependencies into /opt/bucketbridge --------
FROM ${BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_PROGRESS_BAR=off \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# The import's fast CSV path and gzip seek points are C extensions (shared/formats/_*.c): this
# stage gets a C compiler, zlib's headers and, where the base lacks them (Debian's python3), the
# Python headers; the final stage copies only the built virtual environment (zlib itself is in
# every base) and stays without a compiler.
RUN python3 -c "import os, sys, sysconfig; \
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
    && headers="" || headers=python3-dev; \
    apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        gcc libc6-dev zlib1g-dev $headers >/dev/null \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml setup.py README.md requirements.lock ./
COPY shared ./shared
COPY workers ./workers
COPY producers ./producers

# Dependencies are exactly requirements.lock's versions, each checked against its sha256
# (--require-hashes; scripts/lock makes the file from pyproject.toml), so two builds of one
# commit install the same bytes; `pip check` fails a lock that no longer satisfies pyproject.
# Dependencies come as binary wheels (--prefer-binary); the compiler above is for bucketbridge's
# own extensions, which must import from the installed package (checked outside /src, whose
# sources would shadow it) or the build fails.
# The optional build secret "build-ca" is a CA bundle for pip to trust, for builds behind a
# TLS-intercepting proxy (`--secret id=build-ca,src=FILE`); it never lands in a layer.
RUN --mount=type=secret,id=build-ca,target=/run/secrets/build-ca \
    if [ -s /run/secrets/build-ca ]; then export PIP_CERT=/run/secrets/build-ca; fi \
 && python3 -m venv /opt/bucketbridge \
 && /opt/bucketbridge/bin/python -m pip install --prefer-binary --require-hashes --no-deps \
        -r requirements.lock \
 && /opt/bucketbridge/bin/python -m pip wheel --no-deps --wheel-dir /dist . \
 && /opt/bucketbridge/bin/python -m pip install --no-deps /dist/bucketbridge-*.whl \
 && /opt/bucketbridge/bin/python -m pip check \
 && (cd / && /opt/bucketbridge/bin/python -c "import shared.formats._fastcsv, shared.formats._gzseek") \
 && /opt/bucketbridge/bin/bucketbridge --help >/dev/null

# ---- final: the virtual environment on the bare base, run as a fixed non-root UID -------------
FROM ${BASE_IMAGE}

ARG APP_UID=10001

LABEL org.opencontainers.image.title="bucketbridge" \
      org.opencontainers.image.description="Moves event data between the store and customers' S3 buckets: worker, scheduler and operator CLI."

# /run/bucketbridge/metrics is where the worker pods keep prometheus-client's per-process files
# (k8s/base/worker-deployment.yaml sets PROMETHEUS_MULTIPROC_DIR to it, on an emptyDir because
# the root filesystem is read-only; `bucketbridge worker` empties it at start, refusing a
# directory a running process still writes to).  It is NOT set
# here for every process: prometheus-client switches to multiprocess mode whenever the variable
# exists, which would make the scheduler and every CLI command write per-process files too.
# Without it, `bucketbridge worker` uses a private $TMPDIR/bucketbridge-metrics-<pid>.
RUN groupadd --gid "${APP_UID}" bucketbridge \
 && useradd --uid "${APP_UID}" --gid "${APP_UID}" --no-create-home --no-log-init \
            --home-dir /nonexistent --shell /usr/sbin/nologin bucketbridge \
 && mkdir -p /run/bucketbridge/metrics \
 && chown -R "${APP_UID}:${APP_UID}" /run/bucketbridge

COPY --from=builder /opt/bucketbridge /opt/bucketbridge

ENV PATH=/opt/bucketbridge/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

USER ${APP_UID}:${APP_UID}
WORKDIR /tmp
EXPOSE 9191

# Exec form, no shell: `bucketbridge worker` execs dramatiq, so dramatiq's parent process is
# PID 1 and receives the pod's SIGTERM itself; the scheduler handles SIGTERM the same way.
ENTRYPOINT ["bucketbridge"]
CMD ["--help"]
