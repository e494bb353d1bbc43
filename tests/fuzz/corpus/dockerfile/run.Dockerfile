FROM scratch
RUN make
