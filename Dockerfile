# GPU image: CUDA PyTorch base, vidstyle on top. Run with: docker run --gpus all -v $PWD:/data IMAGE stylize /data/in.mp4 ...
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/vidstyle
COPY pyproject.toml README.md ./
COPY vidstyle ./vidstyle
# torch is already in the base image and satisfies the package's range, so pip keeps it.
RUN pip install . && vidstyle --help > /dev/null

WORKDIR /data
ENTRYPOINT ["vidstyle"]
CMD ["--help"]
