#!/usr/bin/env bash
# Installs the Debian packages lth needs, when some are missing (used by the Makefile and
# .ci/run):
#   .ci/system-packages.sh           python, the embedded dataset, LaTeX for report.pdf
#   .ci/system-packages.sh --slurm   the same plus SLURM and munge (one-node test cluster)
# As root on Debian it runs `apt-get update` once and installs what is missing; anywhere
# else it prints one line naming what to install and exits 0, so `make` carries on.
# Nothing installed, nothing done: one dpkg-query call.
set -euo pipefail

# TeX: only what report.tex loads. `latexmk -recorder` on a report lists 92 TeX files, all
# from these three texlive packages and texlive-base (their dependency); texlive-latex-extra
# (79 MB, and texlive-pictures' 76 MB with it) is not needed.
packages=(
    make python3 python3-venv
    dataset-fashion-mnist
    latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended
)
case ${1:-} in
    --slurm) packages+=(slurm-wlm munge) ;;
    "") ;;
    *) echo "usage: $0 [--slurm]" >&2; exit 2 ;;
esac

missing_packages() {
    local package
    for package in "${packages[@]}"; do
        dpkg-query --show --showformat='${db:Status-Status}' "$package" 2>/dev/null \
            | grep -qx installed || echo "$package"
    done
}

if [[ ! -f /etc/debian_version ]] || ! command -v apt-get >/dev/null; then
    echo "lth: not Debian; please install the equivalents of: ${packages[*]}"
    exit 0
fi
mapfile -t missing < <(missing_packages)
((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "lth: missing Debian packages; please run: sudo apt-get install ${missing[*]}"
    exit 0
fi
echo "lth: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
