# syntax=docker/dockerfile:1
# gaussprobe image: `gaussprobe serve` by default, `gaussprobe train ...` as a
# one-shot command. Build: docker build -t gaussprobe .  (see docs/deploy.md)

ARG PYTHON_IMAGE=python:3.11-slim

# Build stage: wheels of gaussprobe, gaussprobe-client and every dependency.
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY flow ./flow
COPY service ./service
COPY clients/python ./clients/python
RUN pip wheel . ./clients/python -w /wheels

# Runtime stage: installs the wheels only, so no compiler, source tree or
# build cache reaches the final image.
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KERAS_BACKEND=jax \
    MPLBACKEND=Agg \
    GAUSSPROBE_STORE=/store

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels gaussprobe gaussprobe-client

# /store is created in the image and owned by the service user, because Docker
# copies this ownership into an empty named volume on its first mount; the
# trainer, running as that user, can then publish into the volume.
RUN useradd --uid "${APP_UID}" --user-group --create-home --shell /usr/sbin/nologin gaussprobe \
    && mkdir -p /store /app \
    && chown "${APP_UID}:${APP_UID}" /store /app

USER 10001
WORKDIR /app
EXPOSE 8000

CMD ["gaussprobe", "serve", "--host", "0.0.0.0", "--port", "8000"]
