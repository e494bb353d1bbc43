FROM scratch
COPY
