"""Native Excel charts (DrawingML) for :class:`~xl_expense.io.sheet_model.ChartSpec`.

A chart needs three parts: the sheet's drawing (``xl/drawings/drawingN.xml``, which places
each chart between two cell corners), one chart part per chart (``xl/charts/chartN.xml``),
and the drawing's relationships to those charts. Series point at ranges on the same sheet,
so the chart follows the numbers if a reviewer edits them.

No cached values are written: Excel and LibreOffice read the cells when they draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xl_expense.io.sheet_model import ChartSpec
from xl_expense.io.sheet_xml import (
    clean_text,
    parse_cell,
    parse_range,
    quote_sheet_name,
    range_ref,
    xml_attr,
    xml_text,
)

C_NS = "http://schemas.openxmlformats.org/drawingml/2006/chart"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
XDR_NS = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL_CHART = R_NS + "/chart"
CT_DRAWING = "application/vnd.openxmlformats-officedocument.drawing+xml"
CT_CHART = "application/vnd.openxmlformats-officedocument.drawingml.chart+xml"
RELS_CT = "application/vnd.openxmlformats-package.relationships+xml"

_KINDS = {"col": ("bar", "col"), "bar": ("bar", "bar"), "line": ("line", None), "pie": ("pie", None)}
_CAT_AX, _VAL_AX = 500000001, 500000002


def _ref(sheet: str, ref: str) -> str:
    """``B5:B13`` on sheet ``审计摘要`` → ``'审计摘要'!$B$5:$B$13`` (charts need absolute refs)."""
    return f"{quote_sheet_name(sheet)}!{range_ref(*parse_range(ref), absolute=True)}"


def _title(text: str) -> str:
    return (f'<c:title><c:tx><c:rich><a:bodyPr/><a:p><a:pPr><a:defRPr sz="1200" b="1"/></a:pPr>'
            f'<a:r><a:rPr lang="zh-CN" sz="1200" b="1"/><a:t>{xml_text(clean_text(text))}</a:t></a:r></a:p>'
            f'</c:rich></c:tx><c:overlay val="0"/></c:title>')


def _series(sheet: str, spec: ChartSpec, line: bool) -> str:
    out = []
    for i, s in enumerate(spec.series):
        marker = '<c:marker><c:symbol val="circle"/><c:size val="5"/></c:marker>' if line else '<c:invertIfNegative val="0"/>'
        out.append(
            f'<c:ser><c:idx val="{i}"/><c:order val="{i}"/>'
            f'<c:tx><c:v>{xml_text(clean_text(s.name))}</c:v></c:tx>{marker}'
            f'<c:cat><c:strRef><c:f>{xml_text(_ref(sheet, s.categories_ref))}</c:f></c:strRef></c:cat>'
            f'<c:val><c:numRef><c:f>{xml_text(_ref(sheet, s.values_ref))}</c:f></c:numRef></c:val>'
            + ('<c:smooth val="0"/>' if line else "") + "</c:ser>")
    return "".join(out)


#: Pie slices are labelled with their percentage of the whole (the 占比 a reader looks for).
_PIE_LABELS = ('<c:dLbls><c:numFmt formatCode="0.0%" sourceLinked="0"/><c:showLegendKey val="0"/>'
               '<c:showVal val="0"/><c:showCatName val="0"/><c:showSerName val="0"/><c:showPercent val="1"/>'
               '<c:showBubbleSize val="0"/><c:showLeaderLines val="1"/></c:dLbls>')


def _pie_xml(sheet: str, spec: ChartSpec) -> str:
    """A pie of the first series: no axes, one colour per slice (varyColors), legend on the right.

    A pie shows one series only; further series would be drawn on top of each other.
    """
    first = ChartSpec(spec.kind, spec.title, list(spec.series)[:1], spec.anchor, spec.width, spec.height)
    series = _series(sheet, first, False).replace('<c:invertIfNegative val="0"/>', "")
    series = series.replace("</c:ser>", _PIE_LABELS + "</c:ser>")
    plot = (f'<c:pieChart><c:varyColors val="1"/>{series}<c:firstSliceAng val="0"/></c:pieChart>')
    return (f'<c:chart>{_title(spec.title)}<c:autoTitleDeleted val="0"/>'
            f'<c:plotArea><c:layout/>{plot}</c:plotArea>'
            '<c:legend><c:legendPos val="r"/><c:overlay val="0"/></c:legend>'
            '<c:plotVisOnly val="1"/><c:dispBlanksAs val="gap"/></c:chart>')


def chart_xml(sheet: str, spec: ChartSpec) -> bytes:
    """One ``c:chartSpace``: a clustered column/bar chart, a line chart with markers, or a pie."""
    if spec.kind not in _KINDS:
        raise ValueError(f"chart kind must be one of {sorted(_KINDS)}, got {spec.kind!r}")
    group, bar_dir = _KINDS[spec.kind]
    if group == "pie":
        return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<c:chartSpace xmlns:c="{C_NS}" xmlns:a="{A_NS}" xmlns:r="{R_NS}">'
                f'<c:roundedCorners val="0"/>{_pie_xml(sheet, spec)}</c:chartSpace>').encode()
    axes = f'<c:axId val="{_CAT_AX}"/><c:axId val="{_VAL_AX}"/>'
    if group == "bar":
        plot = (f'<c:barChart><c:barDir val="{bar_dir}"/><c:grouping val="clustered"/><c:varyColors val="0"/>'
                f'{_series(sheet, spec, False)}<c:gapWidth val="150"/>{axes}</c:barChart>')
    else:
        plot = (f'<c:lineChart><c:grouping val="standard"/><c:varyColors val="0"/>'
                f'{_series(sheet, spec, True)}<c:marker val="1"/>{axes}</c:lineChart>')
    # A horizontal bar chart puts categories on the left axis and values along the bottom.
    cat_pos, val_pos = ("l", "b") if bar_dir == "bar" else ("b", "l")
    num_fmt = (f'<c:numFmt formatCode="{xml_attr(spec.y_axis_format)}" sourceLinked="0"/>'
               if spec.y_axis_format else '<c:numFmt formatCode="General" sourceLinked="1"/>')
    # Horizontal bars list categories bottom-up; maxMin puts the first row (rank 1) on top,
    # as in the table beside the chart; the value axis then crosses at the last category
    # ("max"), which is the bottom again.
    cat_order = "maxMin" if bar_dir == "bar" else "minMax"
    val_crosses = "max" if bar_dir == "bar" else "autoZero"
    cat_ax = (f'<c:catAx><c:axId val="{_CAT_AX}"/><c:scaling><c:orientation val="{cat_order}"/></c:scaling>'
              f'<c:delete val="0"/><c:axPos val="{cat_pos}"/><c:numFmt formatCode="General" sourceLinked="1"/>'
              f'<c:majorTickMark val="out"/><c:minorTickMark val="none"/><c:tickLblPos val="nextTo"/>'
              f'<c:crossAx val="{_VAL_AX}"/><c:crosses val="autoZero"/><c:auto val="1"/>'
              f'<c:lblAlgn val="ctr"/><c:lblOffset val="100"/><c:noMultiLvlLbl val="0"/></c:catAx>')
    val_ax = (f'<c:valAx><c:axId val="{_VAL_AX}"/><c:scaling><c:orientation val="minMax"/></c:scaling>'
              f'<c:delete val="0"/><c:axPos val="{val_pos}"/><c:majorGridlines/>{num_fmt}'
              f'<c:majorTickMark val="out"/><c:minorTickMark val="none"/><c:tickLblPos val="nextTo"/>'
              f'<c:crossAx val="{_CAT_AX}"/><c:crosses val="{val_crosses}"/><c:crossBetween val="between"/></c:valAx>')
    legend = '<c:legend><c:legendPos val="b"/><c:overlay val="0"/></c:legend>' if len(spec.series) > 1 else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<c:chartSpace xmlns:c="{C_NS}" xmlns:a="{A_NS}" xmlns:r="{R_NS}">'
        '<c:roundedCorners val="0"/>'
        f'<c:chart>{_title(spec.title)}<c:autoTitleDeleted val="0"/>'
        f'<c:plotArea><c:layout/>{plot}{cat_ax}{val_ax}</c:plotArea>{legend}'
        '<c:plotVisOnly val="1"/><c:dispBlanksAs val="gap"/></c:chart></c:chartSpace>'
    ).encode()


def _anchor(index: int, spec: ChartSpec) -> str:
    row, col = parse_cell(spec.anchor)
    r0, c0 = row - 1, col - 1  # DrawingML anchors count from 0
    return (
        f'<xdr:twoCellAnchor editAs="oneCell">'
        f'<xdr:from><xdr:col>{c0}</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>{r0}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:from>'
        f'<xdr:to><xdr:col>{c0 + spec.width}</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>{r0 + spec.height}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to>'
        f'<xdr:graphicFrame macro=""><xdr:nvGraphicFramePr><xdr:cNvPr id="{index + 2}" name="Chart {index + 1}"/>'
        f'<xdr:cNvGraphicFramePr/></xdr:nvGraphicFramePr>'
        f'<xdr:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/></xdr:xfrm>'
        f'<a:graphic><a:graphicData uri="{C_NS}"><c:chart xmlns:c="{C_NS}" r:id="rId{index + 1}"/></a:graphicData></a:graphic>'
        f'</xdr:graphicFrame><xdr:clientData/></xdr:twoCellAnchor>'
    )


def _rels(targets: list[str]) -> bytes:
    items = "".join(f'<Relationship Id="rId{i}" Type="{REL_CHART}" Target="{xml_attr(t)}"/>'
                    for i, t in enumerate(targets, start=1))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{items}</Relationships>'
            ).encode()


def rels_path(part: str) -> str:
    """``xl/drawings/drawing1.xml`` → ``xl/drawings/_rels/drawing1.xml.rels``."""
    folder, _, name = part.rpartition("/")
    return f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"


def chart_parts(sheet: str, charts: Sequence[ChartSpec], drawing_part: str,
                new_part: Callable[[str], str]) -> dict[str, tuple[bytes, str]]:
    """The drawing part, its rels and one chart part per chart: part name → (bytes, content type)."""
    parts: dict[str, tuple[bytes, str]] = {}
    targets = []
    for spec in charts:
        part = new_part("xl/charts/chart{}.xml")
        parts[part] = (chart_xml(sheet, spec), CT_CHART)
        targets.append("../charts/" + part.rsplit("/", 1)[1])
    anchors = "".join(_anchor(i, spec) for i, spec in enumerate(charts))
    drawing = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<xdr:wsDr xmlns:xdr="{XDR_NS}" xmlns:a="{A_NS}" xmlns:r="{R_NS}">{anchors}</xdr:wsDr>'
    ).encode()
    parts[drawing_part] = (drawing, CT_DRAWING)
    parts[rels_path(drawing_part)] = (_rels(targets), RELS_CT)
    return parts
