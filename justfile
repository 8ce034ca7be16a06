# Containers in a nutshell. `just --list` explains every recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

mdbook_version := "0.5.4"
mdbook_mermaid_version := "0.17.1"

# List the recipes
default:
    @just --list

# Run everything, as root: unit, snapshot, privileged, book, exercise check, clippy, rustfmt
test-all: _require-root setup
    cargo fmt --all --check
    cargo clippy --all-targets -- -D warnings
    cargo clippy -p nutshell-exercises --all-targets --features solution -- -D warnings
    cargo test -- --include-ignored --skip on_a_bare_v2_root
    tests/layouts/lane
    cargo test -p nutshell-exercises --bin exercises --test support
    mdbook build book
    cargo run -q -p nutshell-exercises -- check

# Run the tests that need no privileges (the privileged ones are listed as ignored)
test:
    cargo test

# Install what the tests and the book need: busybox-static, uidmap, nftables, passt, iproute2, docker-registry, skopeo, umoci, podman, buildah, apache2-utils, runc, containerd, hyperfine and qemu-system-x86 (Debian's packages), mdbook and mdbook-mermaid; give root's containers their /etc/subuid range
setup: _busybox _uidmap _subids _net _images _runtimes _mdbook _qemu

# As root: the cgroup tests on pure v2 and pure v1, each in a qemu guest of Debian's kernel (`--record` records their snapshots; see tests/layouts/lane)
test-layouts *args: (_require-root "test-layouts" "its guests run the privileged cgroup tests") _busybox _qemu
    tests/layouts/lane {{args}}

# Build the book into book/book
book: _mdbook
    mdbook build book

# Serve the book on http://localhost:3000 and rebuild it on every change
book-serve: _mdbook
    mdbook serve book

# Check your solutions to every exercise
exercises:
    cargo run -q -p nutshell-exercises

# Check your solution to one exercise: `just exercise ch01-chroot`
exercise name:
    cargo run -q -p nutshell-exercises -- {{name}}

# Prove every shipped exercise starter fails its tests and every solution passes
exercises-check:
    cargo run -q -p nutshell-exercises -- check

# The main job, as root: chapter 1's container on the default image (built on first use)
demo:
    cargo run -q --bin ch01-chroot

# Benchmarks, as root: 1 and 10 containers on one overlay lower vs copies; container start with and without a bridge, TCP over the bridge vs loopback; unpacking a 100 MiB layer vs GNU tar and umoci; building examples/webapp without and with the cache vs buildah; `nutshell run` and a create/start/delete cycle vs runc and a bare unshare; `nutshell run --rm IMAGE true` vs `podman run --rm` with runc; the scheduler's nodes used vs the lower bounds and its decisions per second on 500 to 15000 nodes (writes book/src/generated/ch07-bench.txt, ch08-bench.txt, ch09-bench.txt, ch10-bench.txt, ch11-bench.txt, workflow-bench.txt, ch12-bench.txt, ch12-nodes.svg, ch12-latency.svg)
bench: _fonts
    #!/usr/bin/env bash
    if [ "$(id -u)" -ne 0 ]; then
        echo "just bench needs root: it mounts overlays and makes bridges. Run it as root (sudo -E just bench)." >&2
        exit 1
    fi
    cargo bench --bench overlay_vs_copy
    cargo bench --bench network
    cargo bench --bench unpack
    cargo bench --bench build
    cargo bench --bench scheduler
    cargo bench --bench runtime
    exec cargo bench --bench workflow

# As root: N containers through nutshell's create/start/delete, the nutshell of about a tenth SIGKILLed half-way (seeded: `just soak 200 0x5eed0015` repeats a run); fails if a mount, cgroup, state dir or process leaked
soak n="200" seed="":
    #!/usr/bin/env bash
    if [ "$(id -u)" -ne 0 ]; then
        echo "just soak needs root: it starts real containers and kills their nutshell. Run it as root (sudo -E just soak {{n}})." >&2
        exit 1
    fi
    exec cargo bench --bench soak -- {{n}} {{seed}}

# Remove everything nutshell keeps for you (as root: /var/lib/nutshell and /run/nutshell; as a user: yours, also what your rootless containers gave to your subordinate ids) and the built book
clean:
    cargo run -q --bin nutshell -- clean
    rm -rf book/book

_require-root recipe="test-all" why="its privileged tests start real containers":
    #!/usr/bin/env bash
    if [ "$(id -u)" -ne 0 ]; then
        echo "just {{recipe}} needs root: {{why}}. Run it as root (sudo -E just {{recipe}}); 'just test' runs the unprivileged part." >&2
        exit 1
    fi

_busybox:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v dpkg >/dev/null && dpkg -s busybox-static >/dev/null 2>&1; then exit 0; fi
    if command -v apt-get >/dev/null; then
        echo "installing busybox-static (the default image and its snapshot tests use it)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    elif ! command -v busybox >/dev/null; then
        echo "install a statically linked busybox with your package manager (Fedora: dnf install busybox); the snapshot tests use it" >&2
        exit 1
    fi

_uidmap:
    #!/usr/bin/env bash
    set -euo pipefail
    # The rootless tests bind their own ranges over these in a private mount namespace,
    # so the files must exist; empty ones (no ranges) are what shadow's tools start with.
    for file in /etc/subuid /etc/subgid; do [ -e "$file" ] || install -m 644 /dev/null "$file"; done
    if command -v newuidmap >/dev/null && command -v newgidmap >/dev/null; then exit 0; fi
    if command -v apt-get >/dev/null; then
        echo "installing uidmap (newuidmap and newgidmap: chapter 6's rootless tests use them)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq uidmap >/dev/null
    else
        echo "install newuidmap and newgidmap with your package manager (Fedora: dnf install shadow-utils); chapter 6's rootless tests use them" >&2
        exit 1
    fi

# Chapter 8: nft publishes ports and masquerades, pasta (Debian's passt) gives rootless
# containers a network, and the tests look with ip and ss (iproute2).
_net:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v nft >/dev/null && command -v pasta >/dev/null && command -v ip >/dev/null && command -v ss >/dev/null; then exit 0; fi
    if command -v apt-get >/dev/null; then
        echo "installing nftables, passt and iproute2 (chapter 8's networks and its tests use them)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables passt iproute2 >/dev/null
    else
        echo "install nftables, passt (pasta) and iproute2 with your package manager; chapter 8 uses them" >&2
        exit 1
    fi

# Chapters 9 and 10's peers: a real registry (docker-registry), skopeo and umoci (image
# formats both ways, and the unpack benchmark), podman (loads what `nutshell image save`
# writes), buildah (builds the same Containerfile, for comparison and the benchmark).
_images:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v docker-registry >/dev/null && command -v skopeo >/dev/null && command -v umoci >/dev/null && command -v podman >/dev/null && command -v buildah >/dev/null && command -v htpasswd >/dev/null; then exit 0; fi
    if command -v apt-get >/dev/null; then
        echo "installing docker-registry, skopeo, umoci, podman, buildah and apache2-utils (chapters 9 and 10's tests use them)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry skopeo umoci podman buildah apache2-utils >/dev/null
    else
        echo "install docker-registry (distribution), skopeo, umoci, podman and buildah with your package manager; chapters 9 and 10's tests use them" >&2
        exit 1
    fi

# Chapter 11's peers: Debian's runc, which the conformance tests run side by side with
# nutshell, containerd (its runc shim drives nutshell in a test), and hyperfine, which
# times the runtimes in `just bench`.
_runtimes:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v runc >/dev/null && command -v ctr >/dev/null && command -v hyperfine >/dev/null; then exit 0; fi
    if command -v apt-get >/dev/null; then
        echo "installing runc, containerd and hyperfine (chapter 11's tests and benchmark use them)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc containerd hyperfine >/dev/null
    else
        echo "install runc, containerd and hyperfine with your package manager; chapter 11's tests and benchmark use them" >&2
        exit 1
    fi

# Chapter 12's bench draws its charts' text in DejaVu Sans, which plotters reads from
# Debian's fonts-dejavu-core.
_fonts:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then exit 0; fi
    if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
        echo "installing fonts-dejavu-core (chapter 12's bench draws its charts' text in DejaVu Sans)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null
    else
        echo "install fonts-dejavu-core (DejaVu Sans, at /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf) with your package manager, as root; chapter 12's bench draws its charts' text in it" >&2
        exit 1
    fi

# Root's containers map their ids to a range of their own, the `nutshell` entry of
# /etc/subuid and /etc/subgid (as podman's use `containers`): add one where it is missing,
# at the first 65536 ids from 2000000000 up that no other entry uses.
_subids:
    #!/usr/bin/env bash
    set -euo pipefail
    [ "$(id -u)" -eq 0 ] || { echo "skipping the nutshell /etc/subuid entry: only root can add it"; exit 0; }
    for file in /etc/subuid /etc/subgid; do
        [ -e "$file" ] || install -m 644 /dev/null "$file"
        grep -q '^nutshell:' "$file" && continue
        start=$(awk -F: -v count=65536 '
            BEGIN { n = 0 }
            NF == 3 && $3 > 0 { lo[n] = $2; hi[n] = $2 + $3; n++ }
            END {
                for (s = 2000000000; s + count <= 4294967295; s += count) {
                    free = 1
                    for (i = 0; i < n; i++) if (s < hi[i] && lo[i] < s + count) free = 0
                    if (free) { print s; exit }
                }
            }' "$file")
        echo "nutshell:$start:65536" >> "$file"
        echo "added nutshell:$start:65536 to $file (the host ids root's containers use)"
    done

# qemu boots the layout guests of `just test-layouts`; apt-get needs fresh package
# lists to fetch their kernel, Debian's linux-image-amd64.
_qemu:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v apt-get >/dev/null; then
        command -v qemu-system-x86_64 >/dev/null && exit 0
        echo "just test-layouts needs Debian's apt-get (it fetches Debian's kernel) and qemu-system-x86_64" >&2
        exit 1
    fi
    if ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then apt-get update -qq; fi
    if command -v qemu-system-x86_64 >/dev/null; then exit 0; fi
    echo "installing qemu-system-x86 (just test-layouts boots its cgroup-layout guests in it)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null

_mdbook:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! mdbook --version 2>/dev/null | grep -q "v{{mdbook_version}}"; then
        echo "installing mdbook {{mdbook_version}} with cargo (a few minutes, once)"
        cargo install --locked --quiet mdbook --version {{mdbook_version}}
    fi
    if ! mdbook-mermaid --version 2>/dev/null | grep -q "{{mdbook_mermaid_version}}"; then
        echo "installing mdbook-mermaid {{mdbook_mermaid_version}} with cargo (the book's diagrams; a few minutes, once)"
        cargo install --locked --quiet mdbook-mermaid --version {{mdbook_mermaid_version}}
    fi
