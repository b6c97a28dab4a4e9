// The dashboard's forms: a labelled field per input, and the API's
// validation errors shown next to the field the problem names (or under
// the form when it names none).

import { ApiError, api } from './api.js';
import { el } from './format.js';

// spec: {name, label, type (text, number, select, checkbox), placeholder, value, min, max,
// options, checked, hint, errorField (the API field whose errors it shows, default name)};
// the input's id is `${prefix}-${name}`.
export function field(spec, prefix) {
  const id = `${prefix}-${spec.name}`;
  let input;
  if (spec.type === 'select') {
    input = el('select', { id, name: spec.name }, ...spec.options.map((o) => el('option', { value: o, text: o })));
  } else {
    input = el('input', {
      id,
      name: spec.name,
      type: spec.type,
      placeholder: spec.placeholder,
      value: spec.value,
      min: spec.min,
      max: spec.max,
      list: spec.list,
      checked: spec.checked,
      autocomplete: 'off',
      spellcheck: 'false',
    });
  }
  return el(
    'div',
    { class: `field field-${spec.type}`, 'data-field': spec.errorField || spec.name },
    el('label', { for: id, text: spec.label }),
    input,
    spec.hint ? el('small', { class: 'hint', text: spec.hint }) : null,
    el('div', { class: 'field-error', id: `${id}-error`, role: 'alert' }),
  );
}

// The request body from a form's fields: empty optional ones are left out,
// checkboxes are booleans (those with sendFalse also when unticked).
export function formBody(form, fields) {
  const body = {};
  for (const spec of fields) {
    const input = form.elements[spec.name];
    if (spec.type === 'checkbox') {
      if (input.checked) body[spec.name] = true;
      else if (spec.sendFalse) body[spec.name] = false;
    } else if (spec.type === 'number') {
      if (input.value !== '') body[spec.name] = Number(input.value);
    } else if (input.value.trim() !== '' || spec.required) {
      body[spec.name] = input.value.trim();
    }
  }
  return body;
}

export function clearErrors(form) {
  for (const node of form.querySelectorAll('.field')) {
    node.classList.remove('invalid');
    node.querySelector('.field-error').textContent = '';
    node.querySelector('input, select').removeAttribute('aria-invalid');
  }
  for (const node of form.querySelectorAll('.form-error')) node.textContent = '';
}

// Shows err next to the field it names (the last of the fields that show that API field's
// errors: for nics, the static IP under the network), else in formError.
export function showError(form, formError, err) {
  const boxes = err instanceof ApiError && err.field ? form.querySelectorAll(`[data-field="${err.field}"]`) : [];
  const box = boxes.length ? boxes[boxes.length - 1] : null;
  if (box) {
    box.classList.add('invalid');
    box.querySelector('.field-error').textContent = err.message;
    const input = box.querySelector('input, select');
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } else {
    formError.textContent = err.message;
  }
}

// A form that POSTs its fields to path (a string, or a function giving one) and calls
// done(answer, form); the API's errors go next to their field.
export function apiForm({
  id, title, intro = null, fields, prefix, path, submitText, done, transform = (body) => body,
}) {
  const formError = el('div', { class: 'form-error', role: 'alert' });
  const submit = el('button', { type: 'submit', class: 'primary', text: submitText });
  const form = el('form', { class: 'card create', id, novalidate: true },
    el('h2', { text: title }), intro, ...fields.map((spec) => field(spec, prefix)), formError, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      const body = transform(formBody(form, fields));
      done(await api('POST', typeof path === 'function' ? path() : path, body), form);
    } catch (err) {
      showError(form, formError, err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
