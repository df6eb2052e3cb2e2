// The package ships no types; only the English list is used.
declare module 'stopword' {
  export const eng: string[];
}
