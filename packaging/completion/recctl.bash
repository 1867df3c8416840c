PLACEHOLDER (made by the rpm slice; replaced at merge)
