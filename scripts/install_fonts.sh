#!/usr/bin/env bash
# Installs the Debian handwriting fonts that scripts/make_realistic_set.py renders digits with.
#
# Idempotent: when every font file is already present it does no apt work at all.
# Exits non-zero with a message naming the missing packages when it cannot install them.
set -euo pipefail

# Package -> one font file it ships. The file is how we tell the package is usable,
# because the generator reads font files, not dpkg state.
declare -A FONT_FILES=(
  [fonts-bwht]=/usr/share/fonts/opentype/bwht/BecauseWeLearn-Regular.otf
  [fonts-dkg-handwriting]=/usr/share/fonts/truetype/fifthhorseman/dkg.ttf
  [fonts-comic-neue]=/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf
  [fonts-dancingscript]=/usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf
  [fonts-kaushanscript]=/usr/share/fonts/opentype/kaushanscript/KaushanScript-Regular.otf
  [fonts-humor-sans]=/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf
  [fonts-kiloji]=/usr/share/fonts/truetype/kiloji/kiloji.ttf
  [fonts-rufscript]=/usr/share/fonts/truetype/rufscript/Rufscript010.ttf
  [fonts-sjfonts]=/usr/share/fonts/truetype/sjfonts/SteveHand.ttf
  [fonts-tomsontalks]=/usr/share/fonts/truetype/tomsontalks/TomsonTalks.ttf
  [fonts-yusei-magic]=/usr/share/fonts/truetype/yusei-magic/YuseiMagic-Regular.ttf
)

missing_packages() {
  local package
  for package in "${!FONT_FILES[@]}"; do
    [[ -f "${FONT_FILES[$package]}" ]] || echo "$package"
  done | sort
}

fail() {
  echo "install_fonts.sh: $*" >&2
  exit 1
}

mapfile -t missing < <(missing_packages)
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install_fonts.sh: all ${#FONT_FILES[@]} handwriting font packages already present"
  exit 0
fi

echo "install_fonts.sh: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1; then
  apt_get=(sudo apt-get)
else
  fail "need root or sudo to apt-get install: ${missing[*]}"
fi
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found (Debian/Ubuntu only); install by hand: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
"${apt_get[@]}" update -q || fail "apt-get update failed"
# --no-install-recommends keeps metapackages from dragging in gigabytes of CJK variants.
"${apt_get[@]}" install -y -q --no-install-recommends "${missing[@]}" \
  || fail "apt-get install failed for: ${missing[*]}"

mapfile -t still_missing < <(missing_packages)
if [[ ${#still_missing[@]} -ne 0 ]]; then
  fail "installed, but font files still missing for: ${still_missing[*]}"
fi
echo "install_fonts.sh: installed ${#missing[@]} package(s); all handwriting fonts present"
