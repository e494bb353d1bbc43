# syntax and comment lines are not instructions
ARG BASE=scratch
FROM --platform=linux/amd64 $BASE
COPY --chown=1000:1000 ["a b", "/dst/"]
ADD app.tar \
    /opt/
ENV A=$NAME B="x y" C=${EMPTY:-dflt}
ENV D some value
LABEL "com.example"='single $NAME'
EXPOSE 80 81/udp
WORKDIR /srv
USER nobody
ENTRYPOINT ["/hello"]
CMD /hello $NAME
