#!/usr/bin/env bash
# Build lmi-deploy's serving image and push it to an ECR repository of the calling AWS account.
#
#   container/build_and_push.sh [REPOSITORY] [TAG] [REGION]
#
# REPOSITORY defaults to lmi-serve, TAG to the project's version, REGION to AWS_REGION / the CLI's default
# region. The repository is created if it does not exist. Extra `docker build` arguments can be passed in
# DOCKER_BUILD_ARGS, e.g. DOCKER_BUILD_ARGS="--build-arg VLLM_IMAGE=vllm/vllm-openai:v0.24.0".
# The last line printed is the image URI to give `lmi-deploy create --image-uri`.
set -euo pipefail

usage() {
    echo "usage: $0 [REPOSITORY] [TAG] [REGION]" >&2
    exit 2
}

[[ $# -le 3 ]] || usage
[[ "${1:-}" != "-h" && "${1:-}" != "--help" ]] || usage

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -n 1)"
repository="${1:-lmi-serve}"
tag="${2:-${version:-latest}}"
region="${3:-${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}}"
if [[ -z "$region" ]]; then
    echo "error: no AWS region: pass it as the third argument or set AWS_REGION" >&2
    exit 2
fi

account="$(aws sts get-caller-identity --query Account --output text)"
case "$region" in
    cn-*) domain="amazonaws.com.cn" ;;
    *) domain="amazonaws.com" ;;
esac
registry="$account.dkr.ecr.$region.$domain"
image="$registry/$repository:$tag"

if ! aws ecr describe-repositories --region "$region" --repository-names "$repository" > /dev/null 2>&1; then
    echo "creating ECR repository $repository in $region" >&2
    aws ecr create-repository --region "$region" --repository-name "$repository" \
        --image-scanning-configuration scanOnPush=true > /dev/null
fi

aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry" >&2

# SageMaker's GPU instances are x86_64. DOCKER_BUILD_ARGS is split on spaces on purpose.
# shellcheck disable=SC2086
docker build --platform linux/amd64 ${DOCKER_BUILD_ARGS:-} -f "$root/container/Dockerfile" -t "$image" "$root" >&2
docker push "$image" >&2

echo "$image"
