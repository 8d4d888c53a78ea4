# RabbitLens app image: the gevent websocket server, as a non-root user, from the same pinned requirements
# that the run command installs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    RABBITLENS_HOST=0.0.0.0 RABBITLENS_PORT=5000
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY app.py ./
COPY lab ./lab
COPY rabbit ./rabbit
COPY web ./web
COPY templates ./templates
COPY static ./static
RUN useradd --create-home --uid 10001 lens
USER lens
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:5000/api/health', timeout=2)" || exit 1
CMD ["python", "app.py"]
