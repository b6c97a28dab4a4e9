// A small line chart on a canvas, drawn by hand: one series of recent
// samples, a filled area, the latest value and the scale, and the x axis's
// two ends (xLabels). No library.

export function drawChart(canvas, values, { label = '', color = '#3b82f6', format = String, xLabels = null } = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 480;
  const height = canvas.clientHeight || 140;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const pad = { left: 8, right: 8, top: 22, bottom: xLabels ? 22 : 8 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = Math.max(1, ...values);

  ctx.strokeStyle = '#e5e7eb';
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + (plotH * i) / 4 + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(width - pad.right, y);
    ctx.stroke();
  }

  ctx.fillStyle = '#374151';
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'top';
  const last = values.length ? values[values.length - 1] : null;
  ctx.fillText(`${label}${last == null ? '' : `: ${format(last)}`}`, pad.left, 4);
  ctx.textAlign = 'right';
  ctx.fillStyle = '#6b7280';
  ctx.fillText(`max ${format(max)}`, width - pad.right, 4);
  ctx.textAlign = 'left';
  if (xLabels) {
    ctx.textBaseline = 'bottom';
    ctx.fillText(xLabels[0], pad.left, height - 2);
    ctx.textAlign = 'right';
    ctx.fillText(xLabels[1], width - pad.right, height - 2);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
  }

  if (values.length < 2) return;
  const step = plotW / (values.length - 1);
  const point = (v, i) => [pad.left + i * step, pad.top + plotH - (v / max) * plotH];
  ctx.beginPath();
  values.forEach((v, i) => {
    const [x, y] = point(v, i);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.stroke();
  ctx.lineTo(pad.left + (values.length - 1) * step, pad.top + plotH);
  ctx.lineTo(pad.left, pad.top + plotH);
  ctx.closePath();
  ctx.globalAlpha = 0.15;
  ctx.fillStyle = color;
  ctx.fill();
  ctx.globalAlpha = 1;
}
