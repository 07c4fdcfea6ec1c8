# syntax=docker/dockerfile:1
# The pyworkers agent image: `pyworkers serve` (remote workers; deploy/kubernetes has the manifests).
#
#   docker build -t pyworkers:0.2 .
#   docker run --rm pyworkers:0.2            # prints `pyworkers serve --help`
#
# Python packages your code needs (numpy, your own modules, ...) go in a venv, in an image of your own built on
# this one:
#
#   FROM pyworkers:0.2
#   USER root
#   RUN apt-get update && apt-get install -y --no-install-recommends python3-venv && rm -rf /var/lib/apt/lists/* \
#    && python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir numpy pandas ./your-package
#   USER 1000:1000
#
# and the agent runs its workers with that venv's interpreter when given `--venv /opt/venv` (in Kubernetes, in the
# container's args). Modules you COPY into the image rather than install are found with --python-path DIR. Wheels (numpy's, pandas') need no compiler; a package that builds from source needs a build
# stage of its own, whose venv you COPY here, so that this image stays without compilers.

# Build: compile the TypeScript. Dev dependencies and the compiler stay in this stage.
FROM node:20-bookworm-slim AS build
WORKDIR /src
# .npmrc: no install scripts (none is needed to build)
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Run: Node.js, Debian's python3 (standard library only), the built package. No compilers, no build tools.
FROM node:20-bookworm-slim
# Not pinned to a Debian version (DL3008): the archive drops old versions as security fixes land; the base image's
# tag chooses the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/pyworkers
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY python ./python
# Byte-compile the worker runtime now: the container's root filesystem is read-only at run time.
# `pyworkers` on PATH (package.json "bin").
RUN python3 -m compileall -q python \
 && chmod 755 dist/cli/main.js \
 && ln -s /opt/pyworkers/dist/cli/main.js /usr/local/bin/pyworkers
ENV NODE_ENV=production \
    PYWORKERS_PYTHON=/usr/bin/python3
# The image's `node` user, by number so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000
# 7700: calls from hosts (--listen, TLS); 7701: /healthz and /readyz (--health)
EXPOSE 7700 7701
ENTRYPOINT ["pyworkers", "serve"]
CMD ["--help"]
