"""The browsable API's renderer (the HTML page at each endpoint for a signed-in browser)."""

from __future__ import annotations

from typing import Any

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's renderer, without the filter form for views that have no queryset.

    Rapport's list views filter in their selectors (visibility first, S2), not through DRF's
    filter backends, so DRF's filter form has no queryset to build on: DRF asserted one and
    the page answered 500. Their filters are documented in the OpenAPI schema.
    """

    def get_filter_form(self, data: Any, view: Any, request: Any) -> Any:
        # Imported here: DRF imports this module while it defines APIView, before generics.
        from rest_framework.generics import GenericAPIView

        own_get_queryset = getattr(type(view), "get_queryset", GenericAPIView.get_queryset)
        if getattr(view, "queryset", None) is None and own_get_queryset is GenericAPIView.get_queryset:
            return None
        return super().get_filter_form(data, view, request)
