/**
 * Small public name and place lists for simulated demographics: common given names from the
 * US Social Security Administration's popular-names tables and common surnames from the US
 * Census Bureau's 2010 surname list; US city/state pairs. Simulated people only.
 */
export const GIVEN_FEMALE = [
  'Mary', 'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Barbara', 'Susan', 'Jessica', 'Sarah', 'Karen',
  'Lisa', 'Nancy', 'Betty', 'Sandra', 'Margaret', 'Ashley', 'Kimberly', 'Emily', 'Donna', 'Michelle',
  'Emma', 'Olivia', 'Ava', 'Sophia', 'Isabella', 'Mia', 'Charlotte', 'Amelia', 'Harper', 'Evelyn',
];
export const GIVEN_MALE = [
  'James', 'Robert', 'John', 'Michael', 'David', 'William', 'Richard', 'Joseph', 'Thomas', 'Christopher',
  'Charles', 'Daniel', 'Matthew', 'Anthony', 'Mark', 'Donald', 'Steven', 'Andrew', 'Paul', 'Joshua',
  'Liam', 'Noah', 'Oliver', 'Elijah', 'Lucas', 'Mason', 'Logan', 'Ethan', 'Aiden', 'Jacob',
];
export const FAMILY = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
  'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson',
  'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores',
];
export const STREETS = ['Main St', 'Oak St', 'Pine St', 'Maple Ave', 'Cedar Rd', 'Elm St', 'Washington Ave', 'Lake Dr', 'Hill Rd', 'Park Ave', 'Church St', 'Mill Rd'];
export const CITIES: Array<[city: string, state: string, zip3: string]> = [
  ['Springfield', 'MA', '011'], ['Worcester', 'MA', '016'], ['Boston', 'MA', '021'], ['Lowell', 'MA', '018'],
  ['Hartford', 'CT', '061'], ['Providence', 'RI', '029'], ['Albany', 'NY', '122'], ['Burlington', 'VT', '054'],
  ['Portland', 'ME', '041'], ['Manchester', 'NH', '031'], ['New Haven', 'CT', '065'], ['Cambridge', 'MA', '021'],
];
