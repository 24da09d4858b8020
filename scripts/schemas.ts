/** Writes pipelines/step-kinds.schema.json from the step-kind registry (`npm run schemas`). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { stepKindsSchemaText } from '../infra/compiler/kinds-schema';

const file = join(import.meta.dirname, '..', 'pipelines', 'step-kinds.schema.json');
await writeFile(file, stepKindsSchemaText());
console.log(`wrote ${file}`);
