"""The page's icon: browsers ask /favicon.ico on every load, and the page links its SVG icon."""

import re


def test_favicon_ico_answers_an_image(shared_lab):
    response = shared_lab.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    assert response.content.lstrip().startswith(b"<svg")
    assert b"<script" not in response.content  # an icon, nothing that runs


def test_the_page_links_an_icon_that_is_served(shared_lab):
    page = shared_lab.get("/").text
    link = re.search(r'<link rel="icon"[^>]*href="([^"]+)"', page)
    assert link, "the page links no icon"
    icon = shared_lab.get(link.group(1))
    assert icon.status_code == 200
    assert icon.headers["Content-Type"].startswith("image/svg+xml")
