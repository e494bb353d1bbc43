from scratch
volume /data
env A="open
