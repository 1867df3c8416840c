PLACEHOLDER (made by the deb slice; replaced at merge)
