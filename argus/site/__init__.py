"""Tools for the engineer at the site: find cameras (``discover``), probe their streams
(``probe``) and install the pipeline as a service (``service``)."""
